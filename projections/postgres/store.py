"""The projection store in PostgreSQL: one transaction per batch, exactly-once effect.

Kafka delivers at least once. In one transaction per batch the store (1) locks the stored
positions of the batch's partitions and skips records below them, refusing a batch that
would skip records above them (`PositionGap`), (2) inserts timeline rows keyed by event_id,
learning which events are new (a duplicate send inserts nothing), (3) folds only the new
events into profiles, purchases and channel counters, (4) advances the positions. The
caller acks the Kafka offsets only after this commits, so a crash anywhere redelivers
records that this transaction then recognises.

An event the projection code cannot fold raises `RecordRefused` naming it, so the caller
can park it and store the rest; a record whose event is None (parked) only advances the
position.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import astuple, fields
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

import orjson
import psycopg2
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateTable, DefaultClause

from projections import profile as profile_projector
from projections.channel_stats import day_key
from projections.errors import NoActiveVersion, PositionGap, RecordRefused
from projections.identity import DEFAULT_RULES, Evidence, IdentityRules, evidence_of
from projections.postgres import views
from projections.postgres.bulk import insert_rows, json_text, upsert_all_columns
from projections.postgres.erasure import scrub_customer
from projections.postgres.identity import Known, Recorded, fold_identity
from projections.postgres.score_backfill import (
    LATEST_ORDER,
    ORDER_COLUMNS,
    backfill_score_state,
    order_rows,
)
from projections.postgres.tables import Tables, build_tables
from projections.profile import Profile
from projections.profile_rows import from_row, to_row
from projections.purchases import PurchaseRow, purchase_row
from projections.score_state import ScoreState
from projections.store import (
    ERASURE_TYPE,
    BatchResult,
    ErasedRecord,
    PartitionKey,
    PositionedEvent,
    find_gaps,
    next_offsets,
    projected_summary,
)
from projections.timeline import TimelineEntry, timeline_entry
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
    "score_inputs",
    "source",
)
_PURCHASE_COLUMNS = tuple(f.name for f in fields(PurchaseRow))
_SCHEMA_LOCK = 7_243_001  # advisory lock id: workers starting together create tables once
# A batch waiting on the version row while a swap commits finds that row no longer active;
# it reads the registry again (a new statement sees the swap) this many times at most.
_ACTIVE_VERSION_READS = 5

T = TypeVar("T")


class PrivacyGate(Protocol):
    """Inside a batch's transaction (`privacy.gate.SuppressionGate`)."""

    def suppressed(
        self, conn: sa.Connection, identifiers: Sequence[tuple[Any, Collection[str]]]
    ) -> set[Any]:
        """Of (event id, its identifier nodes), the ids of the events whose customer was
        erased: they fold nothing and are counted once."""
        ...

    def confirmed_erasures(self, conn: sa.Connection, event_ids: Sequence[Any]) -> set[Any]:
        """Which privacy.erased event ids `rapport erase` recorded (others are forged)."""
        ...


def make_engine(url: str, *, role: str | None = None, **kwargs: Any) -> sa.Engine:
    """An engine on `url`; with `role`, every connection acts as that role (SET ROLE, on
    connecting: after a server restart too), e.g. the worker as `rapport_writer`."""
    engine = sa.create_engine(
        url,
        json_serializer=lambda obj: orjson.dumps(obj).decode(),
        # Also what psycopg2 parses json and jsonb columns with: the standard library's
        # parser took a tenth of a batch's time reading the profiles and score state back.
        json_deserializer=orjson.loads,
        pool_pre_ping=True,
        **kwargs,
    )
    if role is not None:

        def act_as_role(dbapi_connection: Any, _: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute(f'SET ROLE "{role}"')
            dbapi_connection.commit()  # a SET in a transaction rolled back would be undone

        sa.event.listen(engine, "connect", act_as_role)
    return engine


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
        had_timeline, had_score_state = (
            conn.execute(
                sa.text("SELECT to_regclass(:t) IS NOT NULL, to_regclass(:s) IS NOT NULL"),
                {"t": f'"{schema}".timeline', "s": f'"{schema}".score_state'},
            )
            .tuples()
            .one()
        )
        for table in tables.metadata.sorted_tables:
            conn.execute(CreateTable(table, if_not_exists=True))
        _add_new_columns(conn, tables)
        if had_timeline and not had_score_state:  # a version from before the state
            backfill_score_state(conn, tables)
        if with_indexes:
            _create_indexes(conn, tables)
        views.register(conn, schema)
        if views.active_schema(conn) == schema:  # the views of this code's release
            views.point_views_at(conn, schema)
    return tables


def _add_new_columns(conn: sa.Connection, tables: Tables) -> None:
    """A version created by an earlier release gets the nullable columns added since
    (only those missing: an ALTER locks the table against readers)."""
    schema = tables.metadata.schema
    present = set(
        conn.execute(
            sa.text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = :s"
            ),
            {"s": schema},
        ).tuples()
    )
    for table in tables.metadata.sorted_tables:
        for column in table.columns:
            if (table.name, column.name) in present or not column.nullable:
                continue
            kind = column.type.compile(dialect=conn.dialect)
            conn.execute(
                sa.text(f'ALTER TABLE "{schema}"."{table.name}" ADD COLUMN "{column.name}" {kind}')
            )
            if isinstance(column.server_default, DefaultClause):  # apart: no table rewrite
                conn.execute(
                    sa.text(
                        f'ALTER TABLE "{schema}"."{table.name}" ALTER COLUMN "{column.name}" '
                        f"SET DEFAULT {column.server_default.arg}"
                    )
                )


def create_indexes(engine: sa.Engine, schema: str) -> None:
    with engine.begin() as conn:
        _create_indexes(conn, build_tables(schema))


def _create_indexes(conn: sa.Connection, tables: Tables) -> None:
    for table in tables.metadata.sorted_tables:
        for index in table.indexes:
            index.create(conn, checkfirst=True)


class PostgresStore:
    """Applies batches to one projection version, or (schema=None) to whichever version
    is active when the batch commits, so a swap hands the live stream to the new one."""

    def __init__(
        self,
        engine: sa.Engine,
        schema: str | None = None,
        *,
        identity_rules: IdentityRules = DEFAULT_RULES,
        owns_engine: bool = False,
        privacy_gate: PrivacyGate | None = None,
    ) -> None:
        self.engine = engine
        self.schema = schema
        self.identity_rules = identity_rules
        self.owns_engine = owns_engine
        self.privacy_gate = privacy_gate
        self._tables: dict[str, Tables] = {}
        self._known: dict[str, Known] = {}  # per version

    def close(self) -> None:
        if self.owns_engine:
            self.engine.dispose()

    def _tables_of(self, conn: sa.Connection, *, lock: bool = True) -> Tables:
        schema = self.schema or _active_schema(conn, lock=lock)
        if schema not in self._tables:
            self._tables[schema] = build_tables(schema)
        return self._tables[schema]

    def apply_batch(
        self,
        batch: Sequence[PositionedEvent],
        *,
        log_starts: Mapping[PartitionKey, int] | None = None,
    ) -> BatchResult:
        """Store `batch` in one transaction. `log_starts`: the first offset each partition's
        log still holds, where retention deleted older records (a gap below it is allowed).

        Raises PositionGap if a partition's first new record lies past its stored position,
        RecordRefused if the projection code cannot fold one event, and PostgreSQL's errors
        as they come; nothing of the batch is stored then.
        """
        if not batch:
            return BatchResult(0, 0, 0)
        with self.engine.begin() as conn, _discarded_on_error(conn):
            t = self._tables_of(conn)
            stored = _lock_positions(conn, t, {(r.topic, r.partition) for r in batch})
            fresh = [r for r in batch if r.offset >= stored.get((r.topic, r.partition), 0)]
            if gaps := find_gaps(fresh, stored, log_starts or {}):
                raise PositionGap(gaps)
            events = [r.event for r in fresh if r.event is not None]
            erased = [r.erased for r in fresh if r.erased is not None]
            try:
                rules = self.identity_rules
                # Once per event: the privacy gate and the identity fold both need it.
                evidence = {
                    id(e): found
                    for e, found in zip(
                        events, _each_event(events, lambda e: evidence_of(e, rules)), strict=True
                    )
                }
                events, erasures = self._without_erased(conn, t, events, evidence, erased)
                new_events, new_entries = _insert_timeline(conn, t, events)
                recorded = Recorded()
                known = self._known.setdefault(t.schema, Known())
                if new_events:
                    # The rows of the batch's own partitions first; what several workers
                    # share last, so their locks are held only until the commit just after:
                    # the identity graph (its resolution lock) and the channel counters.
                    _fold_profiles(conn, t, new_events)
                    _insert_purchases(conn, t, new_events)
                    _fold_score_state(conn, t, new_entries)
                    recorded = fold_identity(
                        conn, t, [evidence[id(e)] for e in new_events], rules, known
                    )
                    _count_channels(conn, t, new_events)
            except RecordRefused as refused:
                refused.position = _first_carrier(fresh, refused.event_id)
                raise
            counted = _count_erased(conn, t, erased)
            for customer_id in erasures:
                scrub_customer(conn, t, customer_id)
                known.forget_all()  # the graph lost nodes: ask the database again
            if fresh:
                _advance(conn, t, fresh)
        known.remember(recorded)  # committed: it exists now
        carried = sum(1 for r in fresh if r.event is not None or r.erased is not None)
        projected = len(new_events) + counted
        types, newest = projected_summary(new_events)
        return BatchResult(projected, carried - projected, len(batch) - len(fresh), types, newest)

    def _without_erased(
        self,
        conn: sa.Connection,
        t: Tables,
        events: list[Envelope],
        evidence: Mapping[int, Evidence],
        erased: list[ErasedRecord],
    ) -> tuple[list[Envelope], list[str]]:
        """The events to fold: without those the privacy gate suppresses and the control
        events (both join `erased`, to be counted once), nor ids already erased. Also the
        customers whose `privacy.erased` the batch holds, to scrub after it is folded."""
        if not events:
            return events, []
        gate = self.privacy_gate
        identifiers = [(e.event_id, evidence[id(e)].nodes) for e in events]
        suppressed = gate.suppressed(conn, identifiers) if gate else set()
        erasures = [e for e in events if e.type == ERASURE_TYPE]
        confirmed = gate.confirmed_erasures(conn, [e.event_id for e in erasures]) if gate else None
        for e in erasures:
            if confirmed is not None and e.event_id not in confirmed:
                raise RecordRefused(
                    e.event_id,
                    "privacy",
                    ValueError(
                        f"privacy.erased {e.event_id} matches no erasure in the key store: "
                        "only `rapport erase` records one (it scrubs a customer's rows)"
                    ),
                )
        kept = []
        for event in events:
            if event.event_id in suppressed or event.type == ERASURE_TYPE:
                erased.append(ErasedRecord.of(event))
            else:
                kept.append(event)
        ee = t.erased_events
        gone = set(
            conn.execute(
                sa.select(ee.c.event_id).where(ee.c.event_id.in_({x.event_id for x in kept}))
            ).scalars()
        )
        return [x for x in kept if x.event_id not in gone], [
            e.customer.partition_key for e in erasures
        ]

    def positions(self, keys: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """Stored next offsets (no lock): lets the worker skip redelivered records early."""
        with self.engine.connect() as conn, _discarded_on_error(conn):
            p = self._tables_of(conn, lock=False).positions
            rows = conn.execute(
                sa.select(p.c.topic, p.c.partition, p.c.next_offset).where(
                    sa.tuple_(p.c.topic, p.c.partition).in_(sorted(keys))
                )
            )
            return {(r.topic, r.partition): r.next_offset for r in rows}


@contextmanager
def _discarded_on_error(conn: sa.Connection) -> Iterator[None]:
    """A connection that saw a database error is not reused: after a failover, a server
    restart or a database switched to read-only and back, only a new session is sure to
    see the server as it is now (a session keeps, e.g., default_transaction_read_only)."""
    try:
        yield
    except (sa.exc.DBAPIError, psycopg2.Error):
        conn.invalidate()
        raise


def _active_schema(conn: sa.Connection, *, lock: bool) -> str:
    """The active version's schema. Locked FOR SHARE for a batch: a swap (which locks the
    row FOR UPDATE) waits for the batch to end, and a batch that waited on a swap reads the
    registry again, so it lands in the version the swap activated, never in a default."""
    for _ in range(_ACTIVE_VERSION_READS):
        schema = views.active_schema(conn, lock="share" if lock else None)
        if schema is not None:
            return schema
    raise NoActiveVersion(
        f"no active projection version in {views.VERSIONS_TABLE}; "
        "run `rapport projections activate VERSION`"
    )


def _first_carrier(records: Iterable[PositionedEvent], event_id: object) -> tuple[str, int, int]:
    """Where the first record carrying `event_id` sits (the one the batch folded)."""
    return next(
        (r.topic, r.partition, r.offset)
        for r in records
        if r.event is not None and r.event.event_id == event_id
    )


def _each_event(events: Iterable[Envelope], step: Callable[[Envelope], T]) -> list[T]:
    """`step` of every event; an error in it refuses that event, naming it."""
    results = []
    for event in events:
        try:
            results.append(step(event))
        except Exception as exc:
            raise RecordRefused(event.event_id, "fold", exc) from exc
    return results


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


def _insert_timeline(
    conn: sa.Connection, t: Tables, events: list[Envelope]
) -> tuple[list[Envelope], list[TimelineEntry]]:
    """Insert timeline rows; return the events that were new (in input order) and their
    timeline entries."""
    if not events:
        return [], []
    unique: dict[Any, Envelope] = {}
    for event in events:
        unique.setdefault(event.event_id, event)
    entries = _each_event(unique.values(), timeline_entry)
    rows = [_timeline_row(e) for e in entries]
    # Returned as text: psycopg2 makes a uuid.UUID of each uuid it reads, a few µs a row.
    inserted = insert_rows(conn, t.timeline, _TIMELINE_COLUMNS, rows, returning="event_id::text")
    new_ids = {row[0] for row in inserted}
    if len(new_ids) < len(rows):
        _refuse_taken_ids(conn, t, [e for e in entries if str(e.event_id) not in new_ids])
    new = [
        (event, entry)
        for event, entry in zip(unique.values(), entries, strict=True)
        if str(entry.event_id) in new_ids
    ]
    return [event for event, _ in new], [entry for _, entry in new]


def _refuse_taken_ids(conn: sa.Connection, t: Tables, repeated: list[TimelineEntry]) -> None:
    """A repeated event id is a redelivery only from the source that first used it: one
    from another source is refused (parked, with both names), never silently dropped as a
    duplicate, nor taken over."""
    tl = t.timeline
    first: dict[str, str | None] = dict(
        conn.execute(
            sa.select(sa.cast(tl.c.event_id, sa.Text), tl.c.source).where(
                tl.c.event_id.in_([e.event_id for e in repeated])
            )
        ).all()
    )
    for entry in repeated:
        owner = first.get(str(entry.event_id))
        if owner and entry.source and owner != entry.source:
            raise RecordRefused(
                entry.event_id,
                "dedupe",
                ValueError(
                    f"event_id {entry.event_id} was already used by source {owner!r}; "
                    f"source {entry.source!r} cannot reuse it (give the event its own id)"
                ),
            )


def _timeline_row(e: TimelineEntry) -> tuple[Any, ...]:
    return (
        str(e.event_id),
        e.customer_id,
        e.occurred_at,
        e.received_at,
        e.channel,
        e.type,
        e.summary,
        e.campaign_id,
        json_text(e.payload),
        json_text(e.score_inputs),
        e.source,
    )


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
    columns = [col.name for col in c.columns if col.server_default is None]  # not changed_xid
    jsonb = {col.name for col in c.columns if isinstance(col.type, JSONB)}
    rows = []
    for customer_id in sorted(by_customer):
        row = to_row(_fold_profile(current.get(customer_id), by_customer[customer_id]))
        rows.append(tuple(json_text(row[k]) if k in jsonb else row[k] for k in columns))
    insert_rows(conn, c, columns, rows, on_conflict=upsert_all_columns(c))


def _fold_profile(profile: Profile | None, events: list[Envelope]) -> Profile:
    for event in events:
        try:
            profile = profile_projector.apply(profile, event)
        except Exception as exc:
            raise RecordRefused(event.event_id, "fold", exc) from exc
    assert profile is not None
    return profile


def _insert_purchases(conn: sa.Connection, t: Tables, events: list[Envelope]) -> None:
    rows = [astuple(row) for row in _each_event(events, purchase_row) if row is not None]
    rows = [(str(r[0]), *r[1:]) for r in rows]
    insert_rows(conn, t.purchases, _PURCHASE_COLUMNS, rows)


def _count_channels(conn: sa.Connection, t: Tables, events: list[Envelope]) -> None:
    insert_rows(
        conn,
        t.channel_daily,
        ("day", "channel", "type", "events"),
        [(*key, n) for key, n in sorted(Counter(_each_event(events, day_key)).items())],
        on_conflict="(day, channel, type) DO UPDATE "
        "SET events = channel_daily.events + EXCLUDED.events",
    )


def _count_erased(conn: sa.Connection, t: Tables, erased: list[ErasedRecord]) -> int:
    """Count each erased event once in the channel counters (not if the timeline still
    holds it: it was counted then, and erasure will move it); the number counted."""
    if not erased:
        return 0
    unique = {r.event_id: r for r in erased}
    s = t.schema
    new_ids = conn.execute(
        sa.text(
            f"""INSERT INTO {s}.erased_events (event_id)
                SELECT e.id FROM unnest(CAST(:ids AS uuid[])) AS e(id)
                 WHERE NOT EXISTS (SELECT 1 FROM {s}.timeline x WHERE x.event_id = e.id)
                ON CONFLICT DO NOTHING RETURNING event_id"""
        ),
        {"ids": [str(i) for i in sorted(unique, key=str)]},
    ).scalars()
    days = Counter(
        (r.occurred_at.astimezone(UTC).date(), r.channel, r.type)
        for r in (unique[i] for i in new_ids)
    )
    insert_rows(
        conn,
        t.channel_daily,
        ("day", "channel", "type", "events"),
        [(*key, n) for key, n in sorted(days.items())],
        on_conflict="(day, channel, type) DO UPDATE "
        "SET events = channel_daily.events + EXCLUDED.events",
    )
    return sum(days.values())


def _fold_score_state(conn: sa.Connection, t: Tables, entries: list[TimelineEntry]) -> None:
    """Fold the new events' ledger entries into their keys' score state (the parameters
    are the defaults: scores asked with others are computed from the ledger)."""
    by_key: dict[str, list[TimelineEntry]] = defaultdict(list)
    for entry in entries:
        if entry.score_inputs:
            by_key[entry.customer_id].append(entry)
    if not by_key:
        return
    s = t.score_state
    # As text, parsed by orjson: several times faster than psycopg2's json for jsonb.
    current = {
        row.customer_id: ScoreState.from_json(orjson.loads(row.state))
        for row in conn.execute(
            sa.select(s.c.customer_id, sa.cast(s.c.state, sa.Text).label("state"))
            .where(s.c.customer_id.in_(sorted(by_key)))
            .order_by(s.c.customer_id)
            .with_for_update()
        )
    }
    rows = []
    orders = []
    for key in sorted(by_key):
        state = current.get(key) or ScoreState()  # read without orders: this batch's only
        for entry in by_key[key]:
            state.fold(str(entry.event_id), entry.occurred_at, entry.score_inputs)
        rows.append((key, json_text(state.to_json(with_orders=False))))
        orders += order_rows(key, state)
    insert_rows(conn, s, ("customer_id", "state"), rows, on_conflict=upsert_all_columns(s))
    insert_rows(conn, t.score_orders, ORDER_COLUMNS, orders, on_conflict=LATEST_ORDER)


def _advance(conn: sa.Connection, t: Tables, fresh: Sequence[PositionedEvent]) -> None:
    newest: dict[tuple[str, int], datetime] = {}
    for r in fresh:
        key = (r.topic, r.partition)
        received = r.event.received_at if r.event is not None else None
        if received is not None and (key not in newest or received > newest[key]):
            newest[key] = received
    insert_rows(
        conn,
        t.positions,
        ("topic", "partition", "next_offset", "last_received_at"),
        [(t, n, o, newest.get((t, n))) for (t, n), o in sorted(next_offsets(fresh).items())],
        on_conflict="(topic, partition) DO UPDATE "
        "SET next_offset = greatest(positions.next_offset, EXCLUDED.next_offset), "
        "stored_at = now(), "
        "last_received_at = greatest(positions.last_received_at, EXCLUDED.last_received_at)",
    )
