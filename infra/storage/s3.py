"""``BlobStore`` on S3-compatible storage, through django-storages (boto3 underneath)."""

from __future__ import annotations

from dataclasses import dataclass
from io import BytesIO
from typing import Any

from botocore.exceptions import ClientError
from storages.backends.s3 import S3Storage

from infra.storage.ports import BlobNotFoundError, check_key


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint_url: str | None = None  # None: AWS itself
    region: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    prefix: str = ""


class S3BlobStore:
    def __init__(self, config: S3Settings) -> None:
        options: dict[str, Any] = {
            "bucket_name": config.bucket,
            "endpoint_url": config.endpoint_url,
            "region_name": config.region,
            "access_key": config.access_key,
            "secret_key": config.secret_key,
            "location": config.prefix,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": True,
        }
        self.storage = S3Storage(**{k: v for k, v in options.items() if v is not None})

    def put(self, key: str, data: bytes) -> None:
        self.storage.save(check_key(key), BytesIO(data))

    def get(self, key: str) -> bytes:
        try:
            with self.storage.open(check_key(key), "rb") as blob:
                data: bytes = blob.read()
                return data
        except (FileNotFoundError, ClientError) as error:
            if isinstance(error, ClientError) and _status(error) not in (403, 404):
                raise
            raise BlobNotFoundError(key) from None

    def delete(self, key: str) -> None:
        self.storage.delete(check_key(key))

    def exists(self, key: str) -> bool:
        return bool(self.storage.exists(check_key(key)))

    def create_bucket(self) -> None:
        """Create the bucket if it is missing (the embedded S3 server of the tests, a fresh
        deployment)."""
        client = self.storage.connection.meta.client
        try:
            client.head_bucket(Bucket=self.storage.bucket_name)
        except ClientError:
            client.create_bucket(Bucket=self.storage.bucket_name)


def _status(error: ClientError) -> int:
    meta: Any = error.response.get("ResponseMetadata", {})
    return int(meta.get("HTTPStatusCode", 0))
