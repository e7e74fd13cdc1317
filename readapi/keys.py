"""Read-API keys: who may read what, stored hashed in PostgreSQL (schema `rapport_access`).

As the collector's write keys (collector/sources.py): a key is 32 random bytes, so a plain
SHA-256 of it is as good as a slow password hash and cheap enough to check per request;
only the hash and a short prefix are stored, and the key is shown once, when added. Each
key has one role:

- `agent`: one customer at a time, in full (timeline, profile, identity, scores, contact
  policy and violations);
- `analyst`: the same routes and the aggregates, with personal data masked;
- `admin`: key management only (least privilege: an admin reads no customer).
"""

from __future__ import annotations

import enum
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa

from projections.postgres.roles import ACCESS_SCHEMA
from readapi.errors import ReadApiError

KEY_PREFIX = "rr_"


class Role(enum.StrEnum):
    AGENT = "agent"
    ANALYST = "analyst"
    ADMIN = "admin"


metadata = sa.MetaData(schema=ACCESS_SCHEMA)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("key_sha256", sa.Text, nullable=False, unique=True),
    sa.Column("key_prefix", sa.Text, nullable=False),
    sa.Column("role", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint(f"role IN ({', '.join(repr(r.value) for r in Role)})", name="known_role"),
)


class ApiKeyError(ReadApiError):
    """A key cannot be added, found or revoked."""


class InvalidApiKeyRequest(ApiKeyError):
    """No name, or a role that does not exist."""


class DuplicateApiKey(ApiKeyError):
    """A key by that name exists (revoked or not: names are never reused)."""


class UnknownApiKey(ApiKeyError):
    """No key by that name, or it is already revoked."""


@dataclass(frozen=True)
class ApiKeyRecord:
    """A key as listed (never with the key itself)."""

    name: str
    role: Role
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None

    def to_json(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "role": self.role.value,
            "key_prefix": self.key_prefix,
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


class ApiKeys(Protocol):
    """What the read API needs from the key store."""

    def add(self, name: str, role: Role) -> str:
        """Register `name` with `role`; return its key (the only time it is seen)."""
        ...

    def list(self) -> list[ApiKeyRecord]: ...

    def revoke(self, name: str) -> None:
        """Stop the key working; ApiKeyError when it does not exist or is already revoked."""
        ...

    def holder(self, key: str) -> ApiKeyRecord | None:
        """The unrevoked key's record, else None."""
        ...


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_role(value: str) -> Role:
    try:
        return Role(value)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidApiKeyRequest(f"role {value!r} is not one of {known}") from None


class PostgresApiKeys:
    """The `rapport_access.api_keys` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {ACCESS_SCHEMA}"))
            metadata.create_all(conn)

    def add(self, name: str, role: Role) -> str:
        if not name.strip():
            raise InvalidApiKeyRequest("an API key needs a name")
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    api_keys.insert().values(
                        name=name,
                        key_sha256=hash_key(key),
                        key_prefix=key[: len(KEY_PREFIX) + 6],
                        role=parse_role(role).value,
                        created_at=datetime.now(UTC),
                    )
                )
        except sa.exc.IntegrityError:
            raise DuplicateApiKey(f"API key {name!r} already exists") from None
        return key

    def list(self) -> list[ApiKeyRecord]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.name)).mappings()
            return [_record(row) for row in rows]

    def revoke(self, name: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(
                api_keys.update()
                .where(api_keys.c.name == name, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=datetime.now(UTC))
            )
        if done.rowcount == 0:
            known = {k.name for k in self.list()}
            state = "is already revoked" if name in known else "does not exist"
            raise UnknownApiKey(f"API key {name!r} {state}")

    def holder(self, key: str) -> ApiKeyRecord | None:
        with self.engine.connect() as conn:
            row = (
                conn.execute(
                    sa.select(api_keys).where(
                        api_keys.c.key_sha256 == hash_key(key), api_keys.c.revoked_at.is_(None)
                    )
                )
                .mappings()
                .first()
            )
        return _record(row) if row else None


class CachedApiKeys:
    """Remembers verified keys for `ttl_s`, so a request rarely waits on PostgreSQL.

    Unknown keys are not cached; a key revoked elsewhere (`rapport api-keys revoke`) stops
    working within `ttl_s`, one revoked through this object at once."""

    def __init__(self, keys: ApiKeys, ttl_s: float) -> None:
        self.keys = keys
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, ApiKeyRecord]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, role: Role) -> str:
        return self.keys.add(name, role)

    def list(self) -> list[ApiKeyRecord]:
        return self.keys.list()

    def revoke(self, name: str) -> None:
        self.keys.revoke(name)
        with self._lock:
            self._cache = {d: hit for d, hit in self._cache.items() if hit[1].name != name}

    def holder(self, key: str) -> ApiKeyRecord | None:
        digest, now = hash_key(key), time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        found = self.keys.holder(key)
        with self._lock:
            if found is None:
                self._cache.pop(digest, None)
            else:
                self._cache[digest] = (now, found)
        return found


def _record(row: sa.RowMapping) -> ApiKeyRecord:
    return ApiKeyRecord(
        name=row["name"],
        role=Role(row["role"]),
        key_prefix=row["key_prefix"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
