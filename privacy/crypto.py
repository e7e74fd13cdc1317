"""The cryptographic primitives, all from `cryptography`: nothing hand-rolled.

- A data key is 256 random bits used with AES-GCM; each box has a fresh random 96-bit
  nonce and the event id as associated data (a box opens only in the event it was sealed
  for). Nonces are read from the OS's random source a few thousand at a time (`Nonces`).
- Data keys are stored wrapped: AES-GCM under the wrapping key, with the key id as
  associated data.
- An identifier token is HMAC-SHA256 of the identifier under the pepper, 128 bits in hex:
  stable, so suppression and subjects can be looked up by it, and not reversible without
  the master secret.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import os
import threading
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from schemas.errors import RapportError

NONCE_BYTES = 12


class BoxUnreadable(RapportError):
    """A sealed box did not open: tampered with, or sealed for another event or key."""


@dataclass(frozen=True)
class DataKey:
    key_id: UUID
    material: bytes = field(repr=False)

    @classmethod
    def new(cls, key_id: UUID) -> DataKey:
        return cls(key_id, AESGCM.generate_key(bit_length=256))

    @functools.cached_property
    def cipher(self) -> AESGCM:
        return AESGCM(self.material)

    @functools.cached_property
    def id_text(self) -> str:
        """The key id as the wire writes it."""
        return str(self.key_id)


class Nonces:
    """Random nonces, read from `os.urandom` in blocks, each handed out once.

    One `os.urandom` per box cost a sealing producer a third of its rate: the call releases
    the GIL, and kafka-python's I/O thread then holds it for up to the switch interval.
    The nonces are as random as before (the same source); a lock hands each out once
    across threads, and a forked child drops its parent's unused block.
    """

    BLOCK = 4096  # nonces a read (48 KiB)

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block = b""
        self._next = 0
        os.register_at_fork(after_in_child=self._forget)

    def take(self) -> bytes:
        with self._lock:
            start = self._next
            if start >= len(self._block):
                self._block, start = os.urandom(NONCE_BYTES * self.BLOCK), 0
            self._next = start + NONCE_BYTES
            return self._block[start : start + NONCE_BYTES]

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._block, self._next = b"", 0


NONCES = Nonces()


def seal_box(key: DataKey, event_id: str, secret: dict[str, Any]) -> str:
    nonce = NONCES.take()
    sealed = key.cipher.encrypt(nonce, orjson.dumps(secret), event_id.encode())
    return binascii.b2a_base64(nonce + sealed, newline=False).decode()  # = base64.b64encode


def open_box(key: DataKey, event_id: str, box: str) -> dict[str, Any]:
    try:
        raw = base64.b64decode(box, validate=True)
        opened = key.cipher.decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], event_id.encode())
    except (ValueError, InvalidTag):
        raise BoxUnreadable(
            f"the sealed fields of event {event_id} do not open with key {key.key_id}"
        ) from None
    secret = orjson.loads(opened)
    if not isinstance(secret, dict):
        raise BoxUnreadable(f"the sealed fields of event {event_id} are not an object")
    return secret


def wrap(wrapping_key: bytes, key: DataKey) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(wrapping_key).encrypt(nonce, key.material, key.key_id.bytes)


def unwrap(wrapping_key: bytes, key_id: UUID, wrapped: bytes) -> DataKey:
    try:
        material = AESGCM(wrapping_key).decrypt(
            wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], key_id.bytes
        )
    except InvalidTag:
        raise BoxUnreadable(
            f"data key {key_id} does not unwrap: the master secret is not the one it was "
            "stored with"
        ) from None
    return DataKey(key_id, material)


def token(pepper: bytes, identifier: str) -> str:
    return hmac.new(pepper, identifier.encode(), hashlib.sha256).hexdigest()[:32]


class Tokens:
    """`token` of identifiers under one pepper, remembered (an HMAC costs about two
    microseconds, and a producer or worker meets the same identifiers again and again)."""

    def __init__(self, pepper: bytes, *, most: int = 1_000_000) -> None:
        self.pepper = pepper
        self.most = most
        self._known: dict[str, str] = {}

    def __call__(self, identifier: str) -> str:
        found = self._known.get(identifier)
        if found is None:
            if len(self._known) >= self.most:
                self._known.clear()
            found = self._known[identifier] = token(self.pepper, identifier)
        return found
