"""A customer's events read back from the timeline, for scores computed on demand."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from projections.postgres.tables import Tables
from projections.scores import CustomerHistory
from schemas import Channel, CustomerRef, Envelope, Source
from schemas.registry import REGISTRY


def event_from_timeline(row: Any) -> Envelope:
    """Rebuild the event a timeline row was projected from (validated again)."""
    payload = REGISTRY.current_model(row.type).model_validate(row.payload)
    return Envelope.new(
        payload,
        customer=CustomerRef(customer_id=row.customer_id),
        occurred_at=row.occurred_at,
        source=Source(system="timeline", channel=Channel(row.channel)),
        event_id=row.event_id,
        campaign_id=row.campaign_id,
    )


def customer_history(
    conn: sa.Connection,
    tables: Tables,
    customer_id: str,
    keys: Sequence[str],
    *,
    as_of: datetime | None = None,
) -> CustomerHistory:
    """The customer's events (under every key it is known by) up to as_of, in time order."""
    t = tables.timeline
    key = t.c.key if "key" in t.c else t.c.customer_id
    query = sa.select(t).where(key.in_(list(keys)))
    if as_of is not None:
        query = query.where(t.c.occurred_at <= as_of)
    rows = conn.execute(query.order_by(t.c.occurred_at, t.c.event_id))
    return CustomerHistory.from_events(customer_id, (event_from_timeline(r) for r in rows))


def all_histories(
    conn: sa.Connection, tables: Tables, *, as_of: datetime
) -> Iterator[CustomerHistory]:
    """Every customer's history up to as_of (each customer with the events of all its
    keys), streamed in customer order. Visitors never identified by a customer id (an
    anonymous cookie, a handle nobody linked) are not customers, and are left out."""
    t, k, n = tables.timeline, tables.identity_keys, tables.identity_nodes
    c = n.alias("customer_node")
    who = sa.func.coalesce(n.c.customer_id, t.c.customer_id).label("who")
    rows = conn.execution_options(yield_per=5000).execute(
        sa.select(t, who)
        .select_from(
            t.outerjoin(k, k.c.key == t.c.customer_id)
            .outerjoin(n, n.c.node == k.c.node)
            .outerjoin(c, c.c.node == sa.literal("customer:") + who)
        )
        # A key the graph does not know (a version built before it) counts as a customer.
        .where(t.c.occurred_at <= as_of, sa.or_(c.c.node.is_not(None), k.c.key.is_(None)))
        .order_by(who, t.c.occurred_at, t.c.event_id)
    )
    current: CustomerHistory | None = None
    for row in rows:
        if current is None or current.customer_id != row.who:
            if current is not None:
                yield current
            current = CustomerHistory(row.who)
        current.add(event_from_timeline(row))
    if current is not None:
        yield current
