"""Read queries over the analyst views, shared by the CLI and the HTTP API.

A customer is asked for by any of its identifiers (a customer id, an e-mail address, a
phone number, 'kind:value') and answered through the identity graph: its timeline,
profile, purchases and scores cover the events of every key it is known by. Every value
a caller sends is a bound parameter; nothing is pasted into SQL.
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from projections import profile as profile_projector
from projections.errors import AsOfOutOfRange, CustomerNotFound, InvalidQuery
from projections.identity import DEFAULT_RULES, IdentityRules
from projections.postgres.history import customer_history
from projections.postgres.identity import Customer, find_customer
from projections.postgres.tables import ANALYST_SCHEMA, build_tables
from projections.profile_rows import from_row, to_row
from projections.score_state import ScoreState, combined, current_scores, refunded_orders
from projections.scores import (
    BASE_RELATIVE_COLUMNS,
    DEFAULT_PARAMETERS,
    ScoreParameters,
    score_customer,
)
from schemas import Channel

VIEWS = build_tables(ANALYST_SCHEMA)
# The views add `key` (the key a row is filed under) beside `customer_id` (the customer it
# resolves to) to the version's tables.
for _view in (VIEWS.timeline, VIEWS.customers, VIEWS.purchases):
    _view.append_column(sa.Column("key", sa.Text))
MAX_PAGE = 1000
_NOT_ON_THE_PAGE = {"score_inputs"}  # the scores' copy of the payload's values


def resolve_customer(
    conn: sa.Connection, customer: str, rules: IdentityRules = DEFAULT_RULES
) -> Customer:
    """The customer `customer` names (any identifier); raises CustomerNotFound."""
    found = find_customer(conn, customer, rules)
    if found is None:
        raise CustomerNotFound(customer)
    return found


@dataclass(frozen=True)
class TimelinePage:
    customer_id: str
    rows: list[dict[str, Any]]
    next_cursor: str | None


def encode_cursor(occurred_at: datetime, event_id: UUID) -> str:
    return base64.urlsafe_b64encode(f"{occurred_at.isoformat()}|{event_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        at, _, event_id = base64.urlsafe_b64decode(cursor.encode()).decode().partition("|")
        return datetime.fromisoformat(at), UUID(event_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidQuery("cursor", f"{cursor!r} is not a cursor this API returned") from None


def customer_timeline(
    conn: sa.Connection,
    customer_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
    channels: list[str] | None = None,
    types: list[str] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    as_of: datetime | None = None,
    newest_first: bool = False,
    rules: IdentityRules = DEFAULT_RULES,
) -> TimelinePage:
    """One page of the customer's touchpoints in event-time order, keyset-paginated.

    `as_of` answers from history as it stood at event time T (events after T are hidden).
    """
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidQuery("limit", f"{limit} is not between 1 and {MAX_PAGE}")
    known_channels = {c.value for c in Channel}
    for channel in channels or ():
        if channel not in known_channels:
            raise InvalidQuery(
                "channel", f"{channel!r}; known: {', '.join(sorted(known_channels))}"
            )
    for name, value in (("since", since), ("until", until), ("as_of", as_of)):
        if value is not None and value.tzinfo is None:
            raise InvalidQuery(name, f"{value.isoformat()} has no timezone")
    if since and until and since > until:
        raise InvalidQuery("since", "is after until")
    after = decode_cursor(cursor) if cursor else None
    who = resolve_customer(conn, customer_id, rules)
    conn.execute(_ORDERED_INDEX_SCANS)

    query = _page_query(
        _PageShape(
            bool(channels),
            bool(types),
            bool(since),
            bool(until),
            bool(as_of),
            bool(after),
            newest_first,
        )
    )
    values: dict[str, Any] = {
        "keys": who.keys,
        "channels": channels,
        "types": types,
        "since": since,
        "until": until,
        "as_of": as_of,
        "after_at": after[0] if after else None,
        "after_id": after[1] if after else None,
        "rows": limit + 1,
    }
    rows = [_plain(r) for r in conn.execute(query, values).mappings()]
    for row in rows:
        row["customer_id"] = who.customer_id
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["occurred_at"], rows[-1]["event_id"]) if more else None
    return TimelinePage(who.customer_id, rows, next_cursor)


@dataclass(frozen=True)
class _PageShape:
    """Which filters a timeline page has: the statement is built once per shape, and a
    request only binds its values (building it took about a millisecond a page)."""

    channels: bool
    types: bool
    since: bool
    until: bool
    as_of: bool
    after: bool
    newest_first: bool


@functools.cache
def _page_query(shape: _PageShape) -> sa.Select[Any]:
    t = VIEWS.timeline
    conditions: list[sa.ColumnElement[bool]] = []
    if shape.channels:
        conditions.append(t.c.channel == sa.func.any(sa.bindparam("channels", type_=_TEXTS)))
    if shape.types:
        conditions.append(t.c.type == sa.func.any(sa.bindparam("types", type_=_TEXTS)))
    if shape.since:
        conditions.append(t.c.occurred_at >= sa.bindparam("since", type_=_INSTANT))
    if shape.until:
        conditions.append(t.c.occurred_at < sa.bindparam("until", type_=_INSTANT))
    if shape.as_of:
        conditions.append(t.c.occurred_at <= sa.bindparam("as_of", type_=_INSTANT))
    if shape.after:
        key = sa.tuple_(t.c.occurred_at, t.c.event_id)
        bound = sa.tuple_(
            sa.bindparam("after_at", type_=_INSTANT),
            sa.bindparam("after_id", type_=t.c.event_id.type),
        )
        conditions.append(key < bound if shape.newest_first else key > bound)

    def order(table: Any) -> tuple[Any, ...]:
        columns = (table.c.occurred_at, table.c.event_id)
        return tuple(c.desc() for c in columns) if shape.newest_first else columns

    # Per key, the page's worth of rows in order (an index range each), then merged: a
    # customer known by 20 identifiers costs 20 short index scans, not a sort of all rows.
    # One array parameter, not one per key: the statement compiles once, whatever the count.
    keys = (
        sa.func.unnest(sa.bindparam("keys", type_=_TEXTS))
        .table_valued("k")
        .render_derived(name="keys")
    )
    rows = sa.bindparam("rows", type_=sa.Integer)
    page = (
        sa.select(*(c for c in t.c if c.name not in _NOT_ON_THE_PAGE))
        .where(t.c.key == keys.c.k, *conditions)
        .order_by(*order(t))
        .limit(rows)
        .lateral("page")
    )
    query = sa.select(page).select_from(keys.join(page, sa.true()))
    return query.order_by(*order(page)).limit(rows)


_TEXTS = ARRAY(sa.Text)
_UNIX_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INSTANT = sa.DateTime(timezone=True)


# Walk each key's index range in order and stop at the page's end. A key's rows are
# estimated from the average customer (a few), so PostgreSQL would rather fetch all of them
# and sort: for a customer with 10,000 events behind 20 keys that read every row (8.3 ms
# against 1.0 ms). SET LOCAL ends with the caller's transaction (a read API request is one).
_ORDERED_INDEX_SCANS = sa.text("SET LOCAL enable_bitmapscan = off")


def customer_profile(
    conn: sa.Connection, customer_id: str, rules: IdentityRules = DEFAULT_RULES
) -> dict[str, Any]:
    """Identifiers, latest traits, first/last seen, per-channel counts and last contact,
    contact preferences and consent: of every key the customer is known by, merged."""
    who = resolve_customer(conn, customer_id, rules)
    c = VIEWS.customers
    shown = [col for col in c.c if col.name != "changed_xid"]  # not in the view: bookkeeping
    rows = conn.execute(sa.select(*shown).where(c.c.key.in_(who.keys)).order_by(c.c.key)).all()
    merged = profile_projector.merge(who.customer_id, (from_row(r) for r in rows))
    if merged is None:
        raise CustomerNotFound(customer_id)
    profile = to_row(merged)
    profile["keys"] = who.keys
    profile["traits"] = {k: v["value"] for k, v in profile["traits"].items()}
    profile["consent"] = {
        k: {"opted_in": v["value"], "at": v["at"]} for k, v in profile["consent"].items()
    }
    profile["preferences"] = {  # what the customer stated; a cleared field is not stated
        k: v["value"] for k, v in (profile["preferences"] or {}).items() if v["value"] is not None
    }
    profile["survey"] = profile["survey"]["value"] if profile["survey"] else None
    return profile


def _plain(row: sa.RowMapping) -> dict[str, Any]:
    """A row as a dict with plain `str` keys (SQLAlchemy's quoted_name upsets orjson)."""
    return {str(key): value for key, value in row.items()}


TOP_BY = {
    "clv": "clv",
    "p_active": "p_active",
    "rfm": "rfm_score",
    "engagement": "engagement",
    "past_value": "past_value",
}


def customer_scores(
    conn: sa.Connection,
    customer_id: str,
    *,
    as_of: datetime,
    params: ScoreParameters = DEFAULT_PARAMETERS,
    explain: bool = False,
    rules: IdentityRules = DEFAULT_RULES,
) -> dict[str, Any]:
    """The customer's scores as of `as_of`; base-relative RFM and tier from the population
    the worker keeps current (`base`, with the as-of it was ranked at).

    At or after the customer's last scored event they come from the score state the
    worker folds (one row per key); before it, from the customer's ledger up to as_of,
    folded the same way; with other parameters or `explain` (which lists every source
    event), from the ledger by the pure functions. `computed_from` says which source."""
    if as_of.tzinfo is None:
        raise InvalidQuery("as_of", f"{as_of.isoformat()} has no timezone")
    who = resolve_customer(conn, customer_id, rules)
    scores = None
    try:
        row = None
        if not explain and params == DEFAULT_PARAMETERS:
            row = _scores_from_state(conn, who, as_of) or _scores_from_ledger_fold(conn, who, as_of)
        if row is None:
            history = customer_history(conn, VIEWS, who.customer_id, who.keys, as_of=as_of)
            scores = score_customer(history, as_of=as_of, params=params)
            row = {**scores.to_row(), "computed_from": "ledger"}
    except AsOfOutOfRange as far:
        raise InvalidQuery("as_of", str(far)) from far
    for base_column in BASE_RELATIVE_COLUMNS:
        row.pop(base_column)
    s = VIEWS.scores
    base = (
        conn.execute(
            sa.select(s.c.as_of, *(s.c[c] for c in BASE_RELATIVE_COLUMNS)).where(
                s.c.customer_id == who.customer_id
            )
        )
        .mappings()
        .first()
    )
    row["base"] = _plain(base) if base else None
    if explain and scores is not None:
        row["lineage"] = scores.explain()
        row["base_lineage"] = _base_lineage(conn, who, base, params) if base else None
    return row


def _base_lineage(
    conn: sa.Connection, who: Customer, base: sa.RowMapping, params: ScoreParameters
) -> dict[str, Any]:
    """Where the customer's RFM scores and tier came from: its own inputs as of the last
    refresh (with the events behind them) beside what the base was ranked by then (RFM's
    quintile boundaries in the customer's currency, the tiers' cut-offs)."""
    as_of = base["as_of"]
    history = customer_history(conn, VIEWS, who.customer_id, who.keys, as_of=as_of)
    mine = score_customer(history, as_of=as_of, params=params)
    rankings = {
        (r.kind, r.currency): r.lineage
        for r in conn.execute(
            sa.text(f"SELECT kind, currency, lineage FROM {ANALYST_SCHEMA}.score_bases")
        )
    }
    rfm = None
    if (measured := mine.rfm_input) is not None:
        rfm = {
            "scores": {
                "recency": base["rfm_recency"],
                "frequency": base["rfm_frequency"],
                "monetary": base["rfm_monetary"],
                "rfm_score": base["rfm_score"],
            },
            "recency_days": measured.days_since_last_purchase,
            "frequency": measured.purchase_count,
            "monetary": str(measured.total_spend),
            "currency": measured.currency,
            "event_ids": [str(e) for e in measured.event_ids],
            "base": rankings.get(("rfm", measured.currency)),
        }
    return {
        "as_of": as_of,
        "rfm": rfm,
        "tier": {
            "tier": base["tier"],
            "reason": base["tier_reason"],
            "past_value": mine.past_value.value,
            "lifetime_value": mine.lifetime_value.value,
            "net_contribution": str(mine.net_contribution.value),
            "share_of_wallet": mine.share_of_wallet.overall_share,
            "annual_wallet_headroom": mine.share_of_wallet.annual_headroom,
            "event_ids": sorted(
                {
                    str(e)
                    for part in (mine.past_value, mine.lifetime_value, mine.net_contribution)
                    for e in part.event_ids
                }
            ),
            "base": rankings.get(("tiers", "")),
        },
    }


def _scores_from_state(
    conn: sa.Connection, who: Customer, as_of: datetime
) -> dict[str, Any] | None:
    states = conn.execute(
        sa.text(
            f"SELECT state::text FROM {ANALYST_SCHEMA}.score_state "
            "WHERE key = ANY(:keys) ORDER BY key"
        ),
        {"keys": who.keys},
    ).scalars()  # as text for orjson: psycopg2's json is several times slower
    state = combined(ScoreState.from_json(orjson.loads(doc)) for doc in states)
    if refunded := refunded_orders(state):  # the orders refunds take their share back from
        orders = conn.execute(
            sa.text(
                f"""SELECT currency, order_id, at, event_id::text, amount, contribution
                      FROM {ANALYST_SCHEMA}.score_orders
                     WHERE key = ANY(:keys) AND (currency, order_id) IN
                           (SELECT * FROM unnest(CAST(:c AS text[]), CAST(:o AS text[])))"""
            ),
            {"keys": who.keys, "c": [c for c, _ in refunded], "o": [o for _, o in refunded]},
        )
        for currency, order_id, at, event_id, amount, contribution in orders:
            state.money[currency].remember_order(order_id, (at, event_id, amount, contribution))
    row = current_scores(state, who.customer_id, as_of=as_of)
    return None if row is None else {**row, "computed_from": "score_state"}


def _scores_from_ledger_fold(
    conn: sa.Connection, who: Customer, as_of: datetime
) -> dict[str, Any] | None:
    """An earlier as-of: the ledger entries up to it folded into a score state, read as one
    JSON document (a row per entry, each parsed and built into dataclasses, costs several
    times as much for a customer with thousands of events). None where the state cannot
    tell, or where rows from before the ledger need their payloads."""
    # From the latest checkpoint at or before as_of that still holds (as many events up
    # to its time as when it was taken), then the entries after it. Times as integer
    # microseconds since 1970, and event ids only where the fold breaks ties with them
    # (purchases, statements, refusals): text the server need not render.
    point, document, unledgered = conn.execute(
        sa.text(
            f"""WITH point AS (
                    SELECT at, events, state FROM {ANALYST_SCHEMA}.score_checkpoints
                     WHERE customer_id = :customer AND keys = CAST(:keys AS text[])
                       AND at <= :as_of
                     ORDER BY at DESC LIMIT 1),
                held AS (
                    SELECT at, state FROM point
                     WHERE events = (SELECT count(*) FROM {ANALYST_SCHEMA}.timeline
                                      WHERE key = ANY(:keys) AND occurred_at <= point.at))
                SELECT (SELECT state::text FROM held),
                       coalesce(json_agg(json_build_array(
                           CASE WHEN score_inputs ?| array['p', 's', 'e'] THEN event_id END,
                           (extract(epoch FROM occurred_at) * 1000000)::bigint,
                           score_inputs))
                         FILTER (WHERE score_inputs <> '{{}}'::jsonb), '[]')::text,
                       count(*) FILTER (WHERE score_inputs IS NULL)
                  FROM {ANALYST_SCHEMA}.timeline
                 WHERE key = ANY(:keys) AND occurred_at <= :as_of
                   AND occurred_at > coalesce((SELECT at FROM held), '-infinity')"""
        ),
        {"customer": who.customer_id, "keys": who.keys, "as_of": as_of},
    ).one()
    if unledgered:
        return None
    state = ScoreState.from_json(orjson.loads(point)) if point else ScoreState()
    for event_id, micros, entry in orjson.loads(document):
        state.fold(event_id or "", _UNIX_EPOCH + timedelta(microseconds=micros), entry)
    row = current_scores(state, who.customer_id, as_of=as_of)
    return None if row is None else {**row, "computed_from": "ledger"}


def top_customers(conn: sa.Connection, *, by: str, n: int = 20) -> list[dict[str, Any]]:
    """The n best customers by a score, from the population the worker keeps current
    (projections/postgres/population.py); each row says the as-of it was scored at."""
    if by not in TOP_BY:
        raise InvalidQuery("by", f"{by!r}; one of {', '.join(TOP_BY)}")
    if not 1 <= n <= MAX_PAGE:
        raise InvalidQuery("n", f"{n} is not between 1 and {MAX_PAGE}")
    s = VIEWS.scores
    column = s.c[TOP_BY[by]]
    query = (
        sa.select(*(c for c in s.c if c.name not in _RANKING_ONLY))
        .where(column.is_not(None))
        .order_by(column.desc().nulls_last(), s.c.customer_id)
        .limit(n)
    )
    return [_plain(r) for r in conn.execute(query).mappings()]


# Columns of the population that only its ranking reads.
_RANKING_ONLY = {"keys", "rfm_last_purchase", "rfm_purchases", "rfm_spend", "annual_headroom"}


def segments(conn: sa.Connection) -> dict[str, Any]:
    """Customers per value tier and per RFM band, with the averages analysts compare, as
    the population scorer last ranked them (`as_of`, `ranked_at`)."""
    rows = conn.execute(
        sa.text(
            f"SELECT * FROM {ANALYST_SCHEMA}.score_segments "
            "ORDER BY kind, CASE WHEN kind = 'rfm_band' THEN -segment::int END, segment"
        )
    ).mappings()
    tiers, bands = [], []
    for row in rows:
        figures = {k: v for k, v in _plain(row).items() if k not in ("kind", "segment")}
        if row["kind"] == "tier":
            tiers.append({"tier": row["segment"], **figures})
        else:
            bands.append(
                {
                    "rfm_band": int(row["segment"]),
                    "customers": figures["customers"],
                    "avg_clv": figures["avg_clv"],
                }
            )
    population = conn.execute(
        sa.text(f"SELECT as_of, ranked_at FROM {ANALYST_SCHEMA}.population")
    ).first()
    return {
        "as_of": population.as_of if population else None,
        "ranked_at": population.ranked_at if population else None,
        "tiers": tiers,
        "rfm_bands": bands,
    }
