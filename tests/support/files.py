"""The S3 server and ``clamd`` of the attachment tests: the ones ``scripts/with_services.py``
started (``DESKSTREAM_S3_ENDPOINT``, ``DESKSTREAM_CLAMD_ADDRESS``); without it they skip."""

from __future__ import annotations

import os
import uuid

import pytest

from infra.storage.s3 import S3BlobStore, S3Settings


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    endpoint = os.environ.get("DESKSTREAM_S3_ENDPOINT")
    if not endpoint:
        pytest.skip("no S3 server: run through scripts/with_services.py (moto_server)")
    return endpoint


@pytest.fixture(scope="session")
def clamd_address() -> tuple[str, int]:
    address = os.environ.get("DESKSTREAM_CLAMD_ADDRESS")
    if not address:
        pytest.skip("no clamd: run through scripts/with_services.py (make clamav installs it)")
    host, _, port = address.rpartition(":")
    return host, int(port)


def s3_settings(endpoint: str, bucket: str | None = None) -> S3Settings:
    return S3Settings(
        bucket=bucket or f"deskstream-test-{uuid.uuid4().hex[:12]}",
        endpoint_url=endpoint,
        region="us-east-1",
        access_key="testing",
        secret_key="testing",
    )


def s3_store(endpoint: str, bucket: str | None = None) -> S3BlobStore:
    store = S3BlobStore(s3_settings(endpoint, bucket))
    store.create_bucket()
    return store
