"""Where data keys live, and what erasure leaves behind.

`KeyStore` is the interface the producers, the worker and `rapport erase` need; a cloud
KMS could implement it. `PostgresKeyStore` is the default: schema `rapport_keys`, beside
the projections (the gate reads its suppression table inside each projection
transaction), never dropped by a replay.

- `data_keys`: one per subject (the token of an event's partition key: a customer id, or
  the strongest identifier of an unknown visitor), stored wrapped.
- `destroyed_keys`: ids of keys erasure destroyed, so that a box nobody can open is
  told apart from a key that was never known (that one is an error, not an erasure).
- `suppressed`: tokens of every identifier of an erased customer; new events carrying one
  are refused by producers and fold nothing in the worker.
- `erasures`: who was erased (Rapport's customer id, a pseudonym), when and why.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import BYTEA, insert
from sqlalchemy.dialects.postgresql import UUID as PG_UUID

from privacy.crypto import DataKey, unwrap, wrap
from schemas.errors import SubjectErased

__all__ = ["SubjectErased"]  # raised by producers; defined by the contract

SCHEMA = "rapport_keys"
# Erasure takes it exclusively, each projection batch shared (privacy.gate): a batch that
# checked suppression before an erasure committed has committed before the erasure does.
ERASURE_LOCK = 7_311_204_871


@dataclass(frozen=True)
class Suppression:
    token: str
    erasure_id: UUID
    erased_at: datetime


@dataclass(frozen=True)
class Erasure:
    erasure_id: UUID
    customer_id: str
    reason: str
    requested_at: datetime
    identifiers: int
    keys_destroyed: int


class KeyStore(Protocol):
    def keys_for_subjects(
        self, subjects: Collection[str]
    ) -> tuple[dict[str, DataKey], dict[str, Suppression]]:
        """(the data key of each subject token, created when it has none; the subjects
        that are suppressed, which get none)."""
        ...

    def keys_by_id(self, key_ids: Collection[UUID]) -> tuple[dict[UUID, DataKey], set[UUID]]:
        """(the keys that exist, the ids among `key_ids` that erasure destroyed)."""
        ...

    def suppressed(self, tokens: Collection[str]) -> dict[str, Suppression]: ...

    def all_suppressed(self) -> set[str]: ...

    def erasure_of(self, customer_id: str) -> Erasure | None: ...

    def key_count(self, subjects: Collection[str]) -> int:
        """How many of `subjects` have a data key (for a subject-access export)."""
        ...

    def erase(
        self, customer_id: str, reason: str, identifiers: Iterable[str], subjects: Iterable[str]
    ) -> Erasure:
        """Suppress the identifier tokens and destroy the subjects' keys, at once. Erasing
        a customer again adds what is new and keeps the first erasure's id and time."""
        ...


def _tables(metadata: sa.MetaData) -> dict[str, sa.Table]:
    now = sa.text("now()")
    return {
        "data_keys": sa.Table(
            "data_keys",
            metadata,
            sa.Column("subject", sa.Text, primary_key=True),
            sa.Column("key_id", PG_UUID(as_uuid=True), nullable=False, unique=True),
            sa.Column("wrapped", BYTEA, nullable=False),
            sa.Column("created_at", sa.DateTime(timezone=True), server_default=now),
        ),
        "destroyed_keys": sa.Table(
            "destroyed_keys",
            metadata,
            sa.Column("key_id", PG_UUID(as_uuid=True), primary_key=True),
            sa.Column("erasure_id", PG_UUID(as_uuid=True), nullable=False),
            sa.Column("destroyed_at", sa.DateTime(timezone=True), server_default=now),
        ),
        "suppressed": sa.Table(
            "suppressed",
            metadata,
            sa.Column("token", sa.Text, primary_key=True),
            sa.Column("erasure_id", PG_UUID(as_uuid=True), nullable=False),
            sa.Column("erased_at", sa.DateTime(timezone=True), server_default=now),
        ),
        "erasures": sa.Table(
            "erasures",
            metadata,
            sa.Column("erasure_id", PG_UUID(as_uuid=True), primary_key=True),
            sa.Column("customer_id", sa.Text, nullable=False, unique=True),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("requested_at", sa.DateTime(timezone=True), server_default=now),
            sa.Column("identifiers", sa.Integer, nullable=False),
            sa.Column("keys_destroyed", sa.Integer, nullable=False),
        ),
    }


class PostgresKeyStore:
    def __init__(self, engine: sa.Engine, wrapping_key: bytes) -> None:
        self.engine = engine
        self._wrapping_key = wrapping_key
        self.metadata = sa.MetaData(schema=SCHEMA)
        t = _tables(self.metadata)
        self.data_keys, self.destroyed_keys = t["data_keys"], t["destroyed_keys"]
        self.suppressed_table, self.erasures = t["suppressed"], t["erasures"]

    def create_schema(self) -> None:
        """Create the tables when missing; no DDL once they exist (a producer starting while
        the database refuses writes still reads keys)."""
        with self.engine.connect() as conn:
            present = conn.execute(
                sa.text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s"),
                {"s": SCHEMA},
            ).scalar_one()
        if present >= len(self.metadata.tables):
            return
        with self.engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
            self.metadata.create_all(conn)

    def keys_for_subjects(
        self, subjects: Collection[str]
    ) -> tuple[dict[str, DataKey], dict[str, Suppression]]:
        wanted = sorted(set(subjects))
        if not wanted:
            return {}, {}
        # Read the keys that exist (no write: a store that only answers reads still serves
        # known customers); offer each missing subject a key and keep those that were new,
        # in one statement; read the few another producer made meanwhile. The lock, shared
        # with erasure and taken before that statement's snapshot, keeps a key from being
        # made for a subject an erasure is suppressing.
        with self.engine.begin() as conn:
            existing = self._keys_of(conn, wanted)
            wanted = [s for s in wanted if s not in existing]
            if not wanted:
                return existing, {}
            candidates = [DataKey.new(uuid.uuid4()) for _ in wanted]
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock_shared(ERASURE_LOCK)))
            made = set(
                conn.execute(
                    sa.text(
                        f"""INSERT INTO {SCHEMA}.data_keys (subject, key_id, wrapped)
                        SELECT c.subject, c.key_id, c.wrapped
                          FROM unnest(CAST(:subjects AS text[]), CAST(:ids AS uuid[]),
                                      CAST(:wrapped AS bytea[])) AS c(subject, key_id, wrapped)
                         WHERE NOT EXISTS (SELECT 1 FROM {SCHEMA}.suppressed s
                                            WHERE s.token = c.subject)
                        ON CONFLICT (subject) DO NOTHING
                        RETURNING subject"""
                    ),
                    {
                        "subjects": wanted,
                        "ids": [str(k.key_id) for k in candidates],
                        "wrapped": [wrap(self._wrapping_key, k) for k in candidates],
                    },
                ).scalars()
            )
            found = {s: k for s, k in zip(wanted, candidates, strict=True) if s in made}
            if rest := [s for s in wanted if s not in found]:
                found.update(self._keys_of(conn, rest))
            erased = self._suppressed(conn, [s for s in rest if s not in found])
            return {**existing, **found}, erased

    def _keys_of(self, conn: sa.Connection, subjects: list[str]) -> dict[str, DataKey]:
        k = self.data_keys
        rows = conn.execute(
            sa.select(k.c.subject, k.c.key_id, k.c.wrapped).where(k.c.subject.in_(subjects))
        )
        return {r.subject: unwrap(self._wrapping_key, r.key_id, bytes(r.wrapped)) for r in rows}

    def keys_by_id(self, key_ids: Collection[UUID]) -> tuple[dict[UUID, DataKey], set[UUID]]:
        ids = sorted(set(key_ids))
        if not ids:
            return {}, set()
        k, d = self.data_keys, self.destroyed_keys
        with self.engine.connect() as conn:
            keys = {
                r.key_id: unwrap(self._wrapping_key, r.key_id, bytes(r.wrapped))
                for r in conn.execute(sa.select(k.c.key_id, k.c.wrapped).where(k.c.key_id.in_(ids)))
            }
            missing = [i for i in ids if i not in keys]
            destroyed = (
                set(conn.execute(sa.select(d.c.key_id).where(d.c.key_id.in_(missing))).scalars())
                if missing
                else set()
            )
        return keys, destroyed

    def suppressed(self, tokens: Collection[str]) -> dict[str, Suppression]:
        with self.engine.connect() as conn:
            return self._suppressed(conn, sorted(set(tokens)))

    def _suppressed(self, conn: sa.Connection, tokens: list[str]) -> dict[str, Suppression]:
        if not tokens:
            return {}
        s = self.suppressed_table
        rows = conn.execute(sa.select(s).where(s.c.token.in_(tokens)))
        return {r.token: Suppression(r.token, r.erasure_id, r.erased_at) for r in rows}

    def all_suppressed(self) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(self.suppressed_table.c.token)).scalars())

    def key_count(self, subjects: Collection[str]) -> int:
        k = self.data_keys
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(k.c.subject.in_(sorted(set(subjects))))
                ).scalar_one()
            )

    def erasure_of(self, customer_id: str) -> Erasure | None:
        e = self.erasures
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(e).where(e.c.customer_id == customer_id)).first()
        return _erasure(row) if row else None

    def erase(
        self, customer_id: str, reason: str, identifiers: Iterable[str], subjects: Iterable[str]
    ) -> Erasure:
        e, s, k, d = self.erasures, self.suppressed_table, self.data_keys, self.destroyed_keys
        tokens = sorted(set(identifiers))
        with self.engine.begin() as conn:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(ERASURE_LOCK)))
            row = conn.execute(
                sa.select(e).where(e.c.customer_id == customer_id).with_for_update()
            ).first()
            erasure_id = row.erasure_id if row else uuid.uuid4()
            if row is None:
                conn.execute(
                    e.insert().values(
                        erasure_id=erasure_id,
                        customer_id=customer_id,
                        reason=reason,
                        identifiers=0,
                        keys_destroyed=0,
                    )
                )
            if tokens:
                conn.execute(
                    insert(s)
                    .values([{"token": t, "erasure_id": erasure_id} for t in tokens])
                    .on_conflict_do_nothing(index_elements=["token"])
                )
            destroyed = (
                conn.execute(
                    k.delete().where(k.c.subject.in_(sorted(set(subjects)))).returning(k.c.key_id)
                )
                .scalars()
                .all()
            )
            if destroyed:
                conn.execute(
                    insert(d)
                    .values([{"key_id": i, "erasure_id": erasure_id} for i in destroyed])
                    .on_conflict_do_nothing(index_elements=["key_id"])
                )
            suppressed = conn.execute(
                sa.select(sa.func.count()).select_from(s).where(s.c.erasure_id == erasure_id)
            ).scalar_one()
            row = conn.execute(
                e.update()
                .where(e.c.erasure_id == erasure_id)
                .values(identifiers=suppressed, keys_destroyed=e.c.keys_destroyed + len(destroyed))
                .returning(e)
            ).one()
        return _erasure(row)


def _erasure(row: sa.Row) -> Erasure:  # type: ignore[type-arg]
    return Erasure(
        row.erasure_id,
        row.customer_id,
        row.reason,
        row.requested_at,
        row.identifiers,
        row.keys_destroyed,
    )
