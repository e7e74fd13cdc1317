"""Read queries over the analyst views, shared by the CLI and the HTTP API.

Every value a caller sends is a bound parameter; nothing is pasted into SQL.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa

from projections.errors import CustomerNotFound, InvalidQuery
from projections.tables import ANALYST_SCHEMA, build_tables
from schemas import Channel

VIEWS = build_tables(ANALYST_SCHEMA)
MAX_PAGE = 1000


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

    t = VIEWS.timeline
    query = sa.select(t).where(t.c.customer_id == customer_id)
    if channels:
        query = query.where(t.c.channel.in_(channels))
    if types:
        query = query.where(t.c.type.in_(types))
    if since:
        query = query.where(t.c.occurred_at >= since)
    if until:
        query = query.where(t.c.occurred_at < until)
    if as_of:
        query = query.where(t.c.occurred_at <= as_of)
    key = sa.tuple_(t.c.occurred_at, t.c.event_id)
    if cursor:
        after = sa.tuple_(*(sa.literal(v) for v in decode_cursor(cursor)))
        query = query.where(key < after if newest_first else key > after)
    order = (
        (t.c.occurred_at.desc(), t.c.event_id.desc())
        if newest_first
        else (t.c.occurred_at, t.c.event_id)
    )
    rows = [_plain(r) for r in conn.execute(query.order_by(*order).limit(limit + 1)).mappings()]
    if not rows and cursor is None and not customer_exists(conn, customer_id):
        raise CustomerNotFound(customer_id)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1]["occurred_at"], rows[-1]["event_id"]) if more else None
    return TimelinePage(customer_id, rows, next_cursor)


def customer_exists(conn: sa.Connection, customer_id: str) -> bool:
    c = VIEWS.customers
    return (
        conn.execute(sa.select(sa.literal(1)).where(c.c.customer_id == customer_id)).first()
        is not None
    )


def customer_profile(conn: sa.Connection, customer_id: str) -> dict[str, Any]:
    """Identifiers, latest traits, first/last seen, per-channel counts and last contact,
    contact preferences and consent."""
    c = VIEWS.customers
    row = conn.execute(sa.select(c).where(c.c.customer_id == customer_id)).mappings().first()
    if row is None:
        raise CustomerNotFound(customer_id)
    profile = _plain(row)
    profile["traits"] = {k: v["value"] for k, v in row["traits"].items()}
    profile["consent"] = {
        k: {"opted_in": v["value"], "at": v["at"]} for k, v in row["consent"].items()
    }
    profile["preferences"] = row["preferences"]["value"] if row["preferences"] else None
    profile["survey"] = row["survey"]["value"] if row["survey"] else None
    return profile


def _plain(row: sa.RowMapping) -> dict[str, Any]:
    """A row as a dict with plain `str` keys (SQLAlchemy's quoted_name upsets orjson)."""
    return {str(key): value for key, value in row.items()}


def count_projected(conn: sa.Connection) -> int:
    t = VIEWS.timeline
    return int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one())
