"""The ``BlobStore`` port's contract, run against every adapter: the local disk and S3
(django-storages against a real ``moto_server`` on loopback). Then the same files sealed
with envelope encryption: what lands in the store is ciphertext that opens only with the
master key and the attachment's own id."""

from __future__ import annotations

import os
from pathlib import Path

import boto3
import httpx
import pytest

from infra.storage.envelope import Envelope, SealError
from infra.storage.local import LocalDiskBlobStore
from infra.storage.ports import BlobNotFoundError, BlobStore
from tests.support.files import s3_endpoint, s3_store

__all__ = ["s3_endpoint"]  # the fixture, used by name

ADAPTERS = ["local", "s3"]


@pytest.fixture(params=ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalDiskBlobStore(tmp_path / "files")
    return s3_store(request.getfixturevalue("s3_endpoint"))


def test_put_get_replace_delete(store: BlobStore) -> None:
    key = "attachments/t1/a1"
    assert not store.exists(key)
    store.put(key, b"first")
    assert (store.exists(key), store.get(key)) == (True, b"first")
    store.put(key, b"second, longer")
    assert store.get(key) == b"second, longer"
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # deleting nothing is no error


def test_a_missing_key_is_blob_not_found(store: BlobStore) -> None:
    with pytest.raises(BlobNotFoundError):
        store.get("attachments/none/none")


def test_binary_content_and_a_few_megabytes_survive_byte_for_byte(store: BlobStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    store.put("attachments/t1/big", data)
    assert store.get("attachments/t1/big") == data


def test_keys_stay_apart(store: BlobStore) -> None:
    store.put("attachments/t1/a", b"a")
    store.put("attachments/t2/a", b"b")
    assert (store.get("attachments/t1/a"), store.get("attachments/t2/a")) == (b"a", b"b")


@pytest.mark.parametrize("key", ["", "../x", "a//b", "/abs", "a/./b", "a\\b"])
def test_keys_that_could_escape_are_refused(store: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        store.put(key, b"x")


def test_sealed_files_are_ciphertext_at_rest_with_a_key_per_file(store: BlobStore) -> None:
    envelope = Envelope(os.urandom(32))
    secret = b"card number 4111 1111 1111 1111" * 10
    store.put("attachments/t/a1", envelope.seal("a1", secret))
    store.put("attachments/t/a2", envelope.seal("a2", secret))
    one, two = store.get("attachments/t/a1"), store.get("attachments/t/a2")
    assert b"4111" not in one
    assert b"4111" not in two
    assert one[:12] == two[:12]  # same format and master key id ...
    assert one[12:] != two[12:]  # ... but a wrapped data key and nonce of their own
    assert envelope.open("a1", one) == secret
    with pytest.raises(SealError):
        envelope.open("a2", one)  # bound to its attachment: a copied blob does not open
    with pytest.raises(SealError):
        Envelope(os.urandom(32)).open("a1", one)  # another master key
    tampered = one[:-1] + bytes([one[-1] ^ 1])
    with pytest.raises(SealError):
        envelope.open("a1", tampered)


def test_the_s3_adapter_really_stores_in_the_s3_server(s3_endpoint: str) -> None:
    store = s3_store(s3_endpoint, "deskstream-contract-check")
    store.put("attachments/t/visible", b"over HTTP")
    # The bucket is private: an anonymous GET is refused; boto3 of its own reads the object.
    answer = httpx.get(f"{s3_endpoint}/deskstream-contract-check/attachments/t/visible")
    assert answer.status_code == 403
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    body = client.get_object(Bucket="deskstream-contract-check", Key="attachments/t/visible")
    assert body["Body"].read() == b"over HTTP"
