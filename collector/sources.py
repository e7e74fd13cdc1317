"""Write keys: which sources may post events, stored hashed in PostgreSQL.

A key is 32 random bytes, so a plain SHA-256 of it is as good as a slow password hash (no
dictionary to try) and cheap enough to check on every request. Only the hash and a short
prefix (to tell keys apart in listings) are stored; the key is shown once, when added.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa

from collector.errors import CollectorError

KEY_PREFIX = "rk_"

metadata = sa.MetaData()

sources = sa.Table(
    "sources",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("key_sha256", sa.Text, nullable=False, unique=True),
    sa.Column("key_prefix", sa.Text, nullable=False),
    sa.Column("rate_limit", sa.Float, nullable=True),  # events/s; NULL: the collector default
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
)


class SourceError(CollectorError):
    """A source cannot be added, found or revoked."""


@dataclass(frozen=True)
class SourceRecord:
    """A source as listed (never with its key)."""

    name: str
    key_prefix: str
    rate_limit: float | None
    created_at: datetime
    revoked_at: datetime | None


class WriteKeys(Protocol):
    """What the collector needs from the key store: the live source a key belongs to."""

    def source_for(self, key: str) -> SourceRecord | None:
        """The source whose (unrevoked) key this is, else None."""
        ...


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class PostgresSources:
    """The `sources` table: add, list, revoke, and look up by key."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def add(self, name: str, *, rate_limit: float | None = None) -> str:
        """Register `name` and return its write key (the only time it is seen)."""
        key = new_key()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    sources.insert().values(
                        name=name,
                        key_sha256=hash_key(key),
                        key_prefix=key[: len(KEY_PREFIX) + 6],
                        rate_limit=rate_limit,
                        created_at=datetime.now(UTC),
                    )
                )
        except sa.exc.IntegrityError:
            raise SourceError(f"source {name!r} already exists") from None
        return key

    def list(self) -> list[SourceRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(sources).order_by(sources.c.name)).mappings()
            return [_record(row) for row in rows]

    def revoke(self, name: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                sources.update()
                .where(sources.c.name == name, sources.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        if done.rowcount == 0:
            known = {s.name for s in self.list()}
            state = "is already revoked" if name in known else "does not exist"
            raise SourceError(f"source {name!r} {state}")

    def source_for(self, key: str) -> SourceRecord | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(sources).where(
                        sources.c.key_sha256 == hash_key(key), sources.c.revoked_at.is_(None)
                    )
                )
                .mappings()
                .first()
            )
        return _record(row) if row else None


class CachedKeys:
    """Remembers verified keys for `ttl_s`, so a request rarely waits on PostgreSQL.

    Unknown keys are not cached (a flood of bad keys must not evict good ones); a revoked
    key stops working within `ttl_s`.
    """

    def __init__(self, keys: WriteKeys, ttl_s: float) -> None:
        self.keys = keys
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, SourceRecord]] = {}
        self._lock = threading.Lock()

    def cached(self, key: str) -> SourceRecord | None:
        """The source if this key was verified less than `ttl_s` ago (no I/O)."""
        with self._lock:
            hit = self._cache.get(hash_key(key))
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        return None

    def source_for(self, key: str) -> SourceRecord | None:
        found = self.cached(key)
        if found is not None:
            return found
        digest, now = hash_key(key), time.monotonic()
        found = self.keys.source_for(key)
        with self._lock:
            if found is None:
                self._cache.pop(digest, None)
            else:
                self._cache[digest] = (now, found)
        return found


def _record(row: sa.RowMapping) -> SourceRecord:
    return SourceRecord(
        name=row["name"],
        key_prefix=row["key_prefix"],
        rate_limit=row["rate_limit"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
