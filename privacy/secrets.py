"""The master secret, and the two keys derived from it.

One 32-byte secret, read from `RAPPORT_MASTER_KEY` (base64) or from a file (created with
mode 0600 on first use, under the state directory). From it, with HKDF-SHA256:
- the key-wrapping key: data keys are stored only wrapped by it, so a copy of the key
  store's table without the secret opens nothing;
- the pepper of identifier tokens (HMAC-SHA256), so a token cannot be recomputed from a
  guessed e-mail address without the secret.
In production the secret belongs in a KMS; this module is the seam where it plugs in.
"""

from __future__ import annotations

import base64
import os
import secrets as random
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from schemas.errors import RapportError

SECRET_BYTES = 32


class MasterSecretError(RapportError):
    """The master secret is missing, unreadable or malformed; the message says which."""


@dataclass(frozen=True)
class MasterSecrets:
    wrapping_key: bytes
    pepper: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> MasterSecrets:
        if len(secret) != SECRET_BYTES:
            raise MasterSecretError(
                f"the master secret must be {SECRET_BYTES} bytes, got {len(secret)}"
            )
        return cls(
            _derive(secret, b"rapport data-key wrapping"), _derive(secret, b"rapport tokens")
        )

    @classmethod
    def load(cls, *, encoded: str | None, path: Path) -> MasterSecrets:
        """From `encoded` (base64) when given, else from `path`, created when absent."""
        if encoded:
            try:
                return cls.from_secret(base64.b64decode(encoded, validate=True))
            except ValueError as exc:
                raise MasterSecretError(f"RAPPORT_MASTER_KEY is not base64: {exc}") from None
        return cls.from_secret(_read_or_create(path))


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret)


def _read_or_create(path: Path) -> bytes:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several processes start at once, one writes and the others read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read(path)
    with os.fdopen(fd, "w") as f:
        f.write(base64.b64encode(random.token_bytes(SECRET_BYTES)).decode() + "\n")
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text().strip()
    if not text:  # another process is between creating and writing it
        raise FileNotFoundError(path)
    try:
        return base64.b64decode(text, validate=True)
    except ValueError as exc:
        raise MasterSecretError(f"{path} does not hold a base64 secret: {exc}") from None
