"""The worker's end: sealed fields are opened just before decoding.

`Unsealer.open_all` takes a batch of record values and gives, per record, the bytes to
decode (opened, or as they came when nothing was sealed), an `ErasedRecord` when the key
was destroyed (the event counts in the aggregates that hold no personal data and folds
nothing else), or the error that makes the record unreadable (parked at stage `unseal`).
The keys a batch needs are fetched in one round trip and cached; a destroyed key is never
cached as readable for long: the gate re-checks suppression in every transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from privacy.crypto import BoxUnreadable, DataKey, open_box
from privacy.keystore import KeyStore
from projections.store import ErasedRecord
from schemas.errors import RapportError
from schemas.privacy import SEALED, merge_personal

_MARK = b'"sealed":{"key":'
_MAX_CACHED_KEYS = 200_000

Opened = bytes | ErasedRecord | RapportError


class UnknownDataKey(RapportError):
    """A box names a key the key store never held (not an erased one): a producer used
    another key store or master secret."""


class Unsealer:
    def __init__(self, keys: KeyStore) -> None:
        self.keys = keys
        self._keys: dict[UUID, DataKey] = {}
        self._destroyed: set[UUID] = set()

    def open_all(self, values: Sequence[bytes | None]) -> list[Opened]:
        parsed: list[tuple[dict[str, Any], UUID] | RapportError | None] = []
        for value in values:
            parsed.append(_parse(value) if value and _MARK in value else None)
        wanted = {
            p[1]
            for p in parsed
            if isinstance(p, tuple) and p[1] not in self._keys and p[1] not in self._destroyed
        }
        if wanted:
            found, destroyed = self.keys.keys_by_id(wanted)
            if len(self._keys) + len(found) > _MAX_CACHED_KEYS:
                self._keys.clear()
            self._keys.update(found)
            self._destroyed |= destroyed
        return [
            self._open(p) if isinstance(p, tuple) else (p or value or b"")
            for p, value in zip(parsed, values, strict=True)
        ]

    def forget(self, key_ids: set[UUID]) -> None:
        """Drop cached keys erasure destroyed (the gate found them suppressed)."""
        for key_id in key_ids:
            self._keys.pop(key_id, None)
        self._destroyed |= key_ids

    def _open(self, parsed: tuple[dict[str, Any], UUID]) -> Opened:
        wire, key_id = parsed
        if key_id in self._destroyed:
            return _erased(wire)
        key = self._keys.get(key_id)
        if key is None:
            return UnknownDataKey(f"data key {key_id} is unknown to this key store")
        sealed = wire.pop(SEALED)
        try:
            merge_personal(wire, open_box(key, str(wire.get("event_id")), sealed.get("box", "")))
        except (BoxUnreadable, ValueError) as exc:
            return BoxUnreadable(str(exc))
        return orjson.dumps(wire)


def _parse(value: bytes) -> tuple[dict[str, Any], UUID] | RapportError | None:
    try:
        wire = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None  # the decoder names what is wrong
    sealed = wire.get(SEALED) if isinstance(wire, dict) else None
    if not isinstance(sealed, dict):
        return None
    try:
        return wire, UUID(str(sealed.get("key")))
    except ValueError:
        return BoxUnreadable(f"sealed.key {sealed.get('key')!r} is not a key id")


def _erased(wire: dict[str, Any]) -> ErasedRecord | RapportError:
    try:
        return ErasedRecord(
            event_id=UUID(str(wire["event_id"])),
            occurred_at=datetime.fromisoformat(str(wire["occurred_at"]).replace("Z", "+00:00")),
            channel=str(wire["source"]["channel"]),
            type=str(wire["type"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        return BoxUnreadable(f"an event of an erased customer lacks {exc}: cannot be counted")


@dataclass(frozen=True)
class UnsealerFactory:
    """Opens an Unsealer in another process (replay children): a URL, not an engine."""

    url: str
    wrapping_key: bytes = field(repr=False)
    role: str | None = None  # the database role to read keys as (the worker's)

    def __call__(self) -> Unsealer:
        from privacy.keystore import PostgresKeyStore
        from projections.postgres.store import make_engine

        engine = make_engine(self.url, pool_size=1, role=self.role)
        return Unsealer(PostgresKeyStore(engine, self.wrapping_key))
