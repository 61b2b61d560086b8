"""File storage for attachments: the ``BlobStore`` port, its local-disk and S3 adapters,
envelope encryption with per-file data keys, content-type detection and signed links."""
