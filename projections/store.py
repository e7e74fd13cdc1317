"""Writes batches of events into PostgreSQL: one transaction per batch, exactly-once effect.

Kafka delivers at least once. In one transaction per batch the store (1) locks the stored
positions of the batch's partitions and skips records below them, (2) inserts timeline rows
keyed by event_id, learning which events are new (a duplicate send inserts nothing), (3)
folds only the new events into profiles, purchases and channel counters, (4) advances the
positions. The caller acks the Kafka offsets only after this commits, so a crash anywhere
redelivers records that this transaction then recognises.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import astuple, dataclass, fields
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateTable

from projections import profile as profile_projector
from projections import views
from projections.bulk import insert_rows, json_text, upsert_all_columns
from projections.channel_stats import daily_counts
from projections.profile_rows import from_row, to_row
from projections.purchases import PurchaseRow, purchase_row
from projections.tables import Tables, build_tables
from projections.timeline import timeline_entry
from schemas import Envelope

DEFAULT_SCHEMA = "core_v1"
_TIMELINE_COLUMNS = (
    "event_id",
    "customer_id",
    "occurred_at",
    "received_at",
    "channel",
    "type",
    "summary",
    "campaign_id",
    "payload",
)
_PURCHASE_COLUMNS = tuple(f.name for f in fields(PurchaseRow))
_SCHEMA_LOCK = 7_243_001  # advisory lock id: workers starting together create tables once


@dataclass(frozen=True)
class PositionedEvent:
    """A record's place in the log, and its event (None when it was dead-lettered)."""

    topic: str
    partition: int
    offset: int
    event: Envelope | None


@dataclass(frozen=True)
class BatchResult:
    projected: int  # new events folded into the projections
    duplicates: int  # events whose event_id was already projected
    redelivered: int  # records below the stored position: already done


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    return sa.create_engine(
        url, json_serializer=lambda obj: orjson.dumps(obj).decode(), pool_pre_ping=True, **kwargs
    )


def create_schema(
    engine: sa.Engine, schema: str | None = None, *, with_indexes: bool = True
) -> Tables:
    """Create a version's tables (and register it). schema=None: the active version, or
    the first version when there is none. A bulk load passes with_indexes=False and calls
    `create_indexes` after it: building an index once is cheaper than maintaining it."""
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SCHEMA_LOCK})
        views.ensure_registry(conn)
        schema = schema or views.active_schema(conn) or DEFAULT_SCHEMA
        tables = build_tables(schema)
        conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        for table in tables.metadata.sorted_tables:
            conn.execute(CreateTable(table, if_not_exists=True))
        if with_indexes:
            _create_indexes(conn, tables)
        views.register(conn, schema)
    return tables


def create_indexes(engine: sa.Engine, schema: str) -> None:
    with engine.begin() as conn:
        _create_indexes(conn, build_tables(schema))


def _create_indexes(conn: sa.Connection, tables: Tables) -> None:
    for table in tables.metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


class ProjectionStore:
    """Applies batches to one projection version, or (schema=None) to whichever version
    is active when the batch commits, so a swap hands the live stream to the new one."""

    def __init__(self, engine: sa.Engine, schema: str | None = None) -> None:
        self.engine = engine
        self.schema = schema
        self._tables: dict[str, Tables] = {}

    def _tables_of(self, conn: sa.Connection) -> Tables:
        # FOR SHARE: a swap (which locks the row FOR UPDATE) waits for this batch to end.
        schema = self.schema or views.active_schema(conn, lock="share") or DEFAULT_SCHEMA
        if schema not in self._tables:
            self._tables[schema] = build_tables(schema)
        return self._tables[schema]

    def apply_batch(self, batch: Sequence[PositionedEvent]) -> BatchResult:
        if not batch:
            return BatchResult(0, 0, 0)
        with self.engine.begin() as conn:
            t = self._tables_of(conn)
            stored = _lock_positions(conn, t, {(r.topic, r.partition) for r in batch})
            fresh = [r for r in batch if r.offset >= stored.get((r.topic, r.partition), 0)]
            events = [r.event for r in fresh if r.event is not None]
            new_events = _insert_timeline(conn, t, events)
            if new_events:
                _fold_profiles(conn, t, new_events)
                _insert_purchases(conn, t, new_events)
                _count_channels(conn, t, new_events)
            if fresh:
                _advance(conn, t, fresh)
        return BatchResult(len(new_events), len(events) - len(new_events), len(batch) - len(fresh))

    def positions(self, keys: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Stored next offsets (no lock): lets the worker skip redelivered records early."""
        with self.engine.connect() as conn:
            p = self._tables_of(conn).positions
            rows = conn.execute(
                sa.select(p.c.topic, p.c.partition, p.c.next_offset).where(
                    sa.tuple_(p.c.topic, p.c.partition).in_(sorted(keys))
                )
            )
            return {(r.topic, r.partition): r.next_offset for r in rows}


# -- the steps of one batch, all inside its transaction ------------------------------------
def _lock_positions(
    conn: sa.Connection, t: Tables, keys: set[tuple[str, int]]
) -> dict[tuple[str, int], int]:
    p = t.positions
    rows = conn.execute(
        sa.select(p.c.topic, p.c.partition, p.c.next_offset)
        .where(sa.tuple_(p.c.topic, p.c.partition).in_(sorted(keys)))
        .order_by(p.c.topic, p.c.partition)
        .with_for_update()
    )
    return {(r.topic, r.partition): r.next_offset for r in rows}


def _insert_timeline(conn: sa.Connection, t: Tables, events: list[Envelope]) -> list[Envelope]:
    """Insert timeline rows; return the events that were new (in input order)."""
    if not events:
        return []
    unique: dict[Any, Envelope] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    rows = []
    for event in unique.values():
        e = timeline_entry(event)
        rows.append(
            (
                str(e.event_id),
                e.customer_id,
                e.occurred_at,
                e.received_at,
                e.channel,
                e.type,
                e.summary,
                e.campaign_id,
                json_text(e.payload),
            )
        )
    inserted = insert_rows(conn, t.timeline, _TIMELINE_COLUMNS, rows, returning="event_id")
    new_ids = {str(row[0]) for row in inserted}  # uuid or str, by adapter
    return [e for e in unique.values() if str(e.event_id) in new_ids]


def _fold_profiles(conn: sa.Connection, t: Tables, events: list[Envelope]) -> None:
    by_customer: dict[str, list[Envelope]] = defaultdict(list)
    for event in events:
        by_customer[event.customer.partition_key].append(event)
    c = t.customers
    current = {
        row.customer_id: from_row(row)
        for row in conn.execute(
            sa.select(c)
            .where(c.c.customer_id.in_(sorted(by_customer)))
            .order_by(c.c.customer_id)
            .with_for_update()
        )
    }
    columns = [col.name for col in c.columns]
    jsonb = {col.name for col in c.columns if isinstance(col.type, JSONB)}
    rows = []
    for customer_id in sorted(by_customer):
        folded = profile_projector.fold(current.get(customer_id), by_customer[customer_id])
        assert folded is not None
        row = to_row(folded)
        rows.append(tuple(json_text(row[k]) if k in jsonb else row[k] for k in columns))
    insert_rows(conn, c, columns, rows, on_conflict=upsert_all_columns(c))


def _insert_purchases(conn: sa.Connection, t: Tables, events: list[Envelope]) -> None:
    rows = [astuple(row) for e in events if (row := purchase_row(e)) is not None]
    rows = [(str(r[0]), *r[1:]) for r in rows]
    insert_rows(conn, t.purchases, _PURCHASE_COLUMNS, rows)


def _count_channels(conn: sa.Connection, t: Tables, events: list[Envelope]) -> None:
    insert_rows(
        conn,
        t.channel_daily,
        ("day", "channel", "type", "events"),
        [(*key, n) for key, n in sorted(daily_counts(events).items())],
        on_conflict="(day, channel, type) DO UPDATE "
        "SET events = channel_daily.events + EXCLUDED.events",
    )


def _advance(conn: sa.Connection, t: Tables, fresh: Sequence[PositionedEvent]) -> None:
    next_offsets: dict[tuple[str, int], int] = {}
    for r in fresh:
        key = (r.topic, r.partition)
        next_offsets[key] = max(next_offsets.get(key, 0), r.offset + 1)
    insert_rows(
        conn,
        t.positions,
        ("topic", "partition", "next_offset"),
        [(t, n, o) for (t, n), o in sorted(next_offsets.items())],
        on_conflict="(topic, partition) DO UPDATE "
        "SET next_offset = greatest(positions.next_offset, EXCLUDED.next_offset)",
    )
