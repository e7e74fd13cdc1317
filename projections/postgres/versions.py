"""Projection versions in PostgreSQL: one schema each, a registry, views on the active one.

Each version lives in its own PostgreSQL schema (`core_v1`, `core_v2`, …) so a new one can
be built from offset 0 while the live one serves. `rapport.projection_versions` registers
them; the analysts' views in schema `rapport` point at the active one, and switching
replaces every view in one transaction, so a reader sees the old version or the new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from projections.contact_policy import DEFAULT_CONTACT_RULES, ContactRules
from projections.errors import ProjectionError
from projections.identity import DEFAULT_RULES, IdentityRules
from projections.postgres import views
from projections.postgres.population import score_population
from projections.postgres.store import (
    PostgresStore,
    PrivacyGate,
    create_indexes,
    create_schema,
    make_engine,
)
from projections.postgres.tables import build_tables
from projections.postgres.verify import checksums, compare, scores_as_of
from projections.store import Difference, LiveSnapshot, Version


@dataclass(frozen=True)
class OpenStore:
    """Opens a version's store in another process: it carries a URL, not an engine."""

    url: str
    name: str
    identity_rules: IdentityRules
    privacy_gate: PrivacyGate | None = None

    def __call__(self) -> PostgresStore:
        engine = make_engine(self.url, pool_size=1)
        return PostgresStore(
            engine,
            self.name,
            identity_rules=self.identity_rules,
            owns_engine=True,
            privacy_gate=self.privacy_gate,
        )


class PostgresVersions:
    def __init__(
        self,
        engine: sa.Engine,
        identity_rules: IdentityRules = DEFAULT_RULES,
        contact_rules: ContactRules = DEFAULT_CONTACT_RULES,
        privacy_gate: PrivacyGate | None = None,
    ) -> None:
        self.engine = engine
        self.identity_rules = identity_rules
        self.contact_rules = contact_rules
        self.privacy_gate = privacy_gate

    def store(self, name: str | None = None) -> PostgresStore:
        return PostgresStore(
            self.engine, name, identity_rules=self.identity_rules, privacy_gate=self.privacy_gate
        )

    def store_factory(self, name: str) -> Callable[[], PostgresStore]:
        url = self.engine.url.render_as_string(hide_password=False)
        return OpenStore(url, name, self.identity_rules, self.privacy_gate)

    def ensure_active(self) -> str:
        create_schema(self.engine)
        with self.engine.connect() as conn:
            active = views.active_schema(conn)
        if active is None:  # another process dropped it meanwhile
            raise ProjectionError("no active projection version after creating one")
        return active

    def versions(self) -> list[Version]:
        with self.engine.begin() as conn:
            views.ensure_registry(conn)
            rows = conn.execute(
                sa.text(
                    "SELECT schema_name, status, active, created_at, activated_at "
                    f"FROM {views.VERSIONS_TABLE} ORDER BY created_at"
                )
            ).all()
            return [
                Version(
                    row.schema_name,
                    row.status,
                    row.active,
                    row.created_at,
                    row.activated_at,
                    _records(conn, row.schema_name),
                )
                for row in rows
            ]

    def prepare(self, name: str, *, bulk: bool = False) -> None:
        create_schema(self.engine, name, with_indexes=not bulk)

    def finish(self, name: str, *, scores_as_of: datetime | None, params: Any) -> None:
        create_indexes(self.engine, name)
        if scores_as_of is not None:
            score_population(
                self.engine,
                name,
                as_of=scores_as_of,
                params=params,
                contact_rules=self.contact_rules,
            )
        self.set_status(name, "ready")

    def set_status(self, name: str, status: str) -> None:
        with self.engine.begin() as conn:
            views.set_status(conn, name, status)

    def activate(self, name: str) -> str | None:
        with self.engine.begin() as conn:
            views.ensure_registry(conn)
            live = views.active_schema(conn, lock="update")
            views.activate(conn, name)
            return live

    def activate_if_complete(self, name: str, topic: str) -> tuple[bool, str | None]:
        with self.engine.begin() as conn:
            live = views.active_schema(conn, lock="update")  # waits for in-flight batches
            if live == name:
                return True, None
            if live is not None:
                mine, theirs = (
                    stored_positions(conn, name, topic),
                    stored_positions(conn, live, topic),
                )
                if any(mine.get(p, 0) < offset for p, offset in theirs.items()):
                    return False, live
            views.activate(conn, name)
            return True, live

    def drop(self, name: str) -> None:
        with self.engine.begin() as conn:
            views.ensure_registry(conn)
            if views.active_schema(conn, lock="update") == name:
                raise ProjectionError(f"{name} is active; activate another version first")
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
            conn.execute(
                sa.text(f"DELETE FROM {views.VERSIONS_TABLE} WHERE schema_name = :s"), {"s": name}
            )

    def positions_of(self, name: str, topic: str) -> dict[int, int]:
        with self.engine.connect() as conn:
            return stored_positions(conn, name, topic)

    def freeze_live(self, topic: str) -> LiveSnapshot:
        # One snapshot: the positions and the checksums describe the same moment.
        with self.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            live = views.active_schema(conn)
            if live is None:
                raise ProjectionError("there is no live version to compare with")
            snapshot = LiveSnapshot(
                live,
                stored_positions(conn, live, topic),
                checksums(conn, live),
                scores_as_of(conn, build_tables(live)),
            )
            conn.rollback()
        return snapshot

    def differences(self, live: LiveSnapshot, name: str) -> tuple[dict[str, int], list[Difference]]:
        with self.engine.connect() as conn:
            rebuilt = checksums(conn, name)
            return rebuilt.rows, compare(conn, live.fingerprint, rebuilt, live.name, name)


def stored_positions(conn: sa.Connection, name: str, topic: str) -> dict[int, int]:
    """Version `name`'s next offset of each partition of `topic`."""
    p = build_tables(name).positions
    rows = conn.execute(sa.select(p.c.partition, p.c.next_offset).where(p.c.topic == topic))
    return {r.partition: r.next_offset for r in rows}


def _records(conn: sa.Connection, name: str) -> int | None:
    """Records a version has projected (all topics), or None when it has no tables."""
    positions = build_tables(name).positions
    try:
        with conn.begin_nested():  # a missing table aborts only this savepoint
            return int(
                conn.execute(
                    sa.select(sa.func.coalesce(sa.func.sum(positions.c.next_offset), 0))
                ).scalar_one()
            )
    except sa.exc.ProgrammingError:
        return None
