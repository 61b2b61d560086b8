"""The ``BlobStore`` port: opaque bytes under a key. Adapters: ``LocalDiskBlobStore``
(``./var``, the embedded default) and ``S3BlobStore`` (any S3-compatible store through
django-storages); ``tests/contracts/test_blob_store_contract.py`` runs one suite on both."""

from __future__ import annotations

from typing import Protocol


class BlobNotFoundError(LookupError):
    """No blob is stored under this key."""


class BlobStore(Protocol):
    def put(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key``, replacing what was there."""

    def get(self, key: str) -> bytes:
        """The bytes under ``key``; ``BlobNotFoundError`` if there are none."""

    def delete(self, key: str) -> None:
        """Remove ``key``; nothing stored is not an error."""

    def exists(self, key: str) -> bool: ...


def check_key(key: str) -> str:
    """Keys are made by the application (``attachments/<ticket>/<file>``): relative,
    slash-separated, no empty or dot segments. Anything else is a bug, refused loudly."""
    parts = key.split("/")
    if not key or any(p in {"", ".", ".."} for p in parts) or "\\" in key or "\x00" in key:
        raise ValueError(f"invalid blob key {key!r}")
    return key
