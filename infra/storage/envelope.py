"""Envelope encryption at rest: each file gets its own random data key (AES-256-GCM), and
that key is stored beside the file wrapped (encrypted) with the master key.

A sealed blob: ``DSE1`` | master key id (8 bytes) | wrap nonce (12) | wrapped data key
(32 + 16 tag) | data nonce (12) | ciphertext with its tag. The attachment's id is the
associated data of both encryptions, so a blob copied under another attachment's id does
not open. Losing the master key loses every file; rotating it means re-wrapping the data
keys (the files themselves need not be re-encrypted).
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"DSE1"
NONCE = 12
KEY = 32
WRAPPED = KEY + 16
KEY_ID = 8
HEADER = len(MAGIC) + KEY_ID + NONCE + WRAPPED + NONCE


class SealError(ValueError):
    """A blob that is not ours, was tampered with, or was sealed with another master key."""


class Envelope:
    def __init__(self, master_key: bytes) -> None:
        if len(master_key) != KEY:
            raise ValueError("The attachment master key must be 32 bytes.")
        self._master = AESGCM(master_key)
        self.key_id = hashlib.sha256(b"deskstream-master:" + master_key).digest()[:KEY_ID]

    def seal(self, context: str, data: bytes) -> bytes:
        aad = context.encode()
        data_key = AESGCM.generate_key(bit_length=256)
        wrap_nonce, data_nonce = os.urandom(NONCE), os.urandom(NONCE)
        wrapped = self._master.encrypt(wrap_nonce, data_key, b"key:" + aad)
        body = AESGCM(data_key).encrypt(data_nonce, data, b"data:" + aad)
        return MAGIC + self.key_id + wrap_nonce + wrapped + data_nonce + body

    def open(self, context: str, blob: bytes) -> bytes:
        if len(blob) < HEADER or not blob.startswith(MAGIC):
            raise SealError("not a sealed attachment")
        at = len(MAGIC)
        key_id, at = blob[at : at + KEY_ID], at + KEY_ID
        if key_id != self.key_id:
            raise SealError("sealed with another master key")
        wrap_nonce, at = blob[at : at + NONCE], at + NONCE
        wrapped, at = blob[at : at + WRAPPED], at + WRAPPED
        data_nonce, at = blob[at : at + NONCE], at + NONCE
        aad = context.encode()
        try:
            data_key = self._master.decrypt(wrap_nonce, wrapped, b"key:" + aad)
            return AESGCM(data_key).decrypt(data_nonce, blob[at:], b"data:" + aad)
        except InvalidTag:
            raise SealError("the blob does not open with this key and context") from None
