"""A customer's events read back from the timeline, for scores computed on demand.

Each row's score ledger entry (projections/score_ledger.py) gives the scores what they
need without its payload; rows projected before the ledger existed have none, and their
payload is validated again instead."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from projections.postgres.tables import Tables
from projections.score_ledger import CustomerHistory
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


def _columns(t: sa.Table) -> list[Any]:
    """What a history needs of a timeline row: the payload only where no entry exists."""
    return [
        t.c.event_id,
        t.c.customer_id,
        t.c.occurred_at,
        t.c.channel,
        t.c.type,
        t.c.campaign_id,
        t.c.score_inputs,
        sa.case((t.c.score_inputs.is_(None), t.c.payload)).label("payload"),
    ]


def _add(history: CustomerHistory, row: Any) -> None:
    if row.score_inputs is not None:
        history.add_entry(row.event_id, row.occurred_at, row.score_inputs)
    else:
        history.add(event_from_timeline(row))


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
    query = sa.select(*_columns(t)).where(key.in_(list(keys)))
    if as_of is not None:
        query = query.where(t.c.occurred_at <= as_of)
    history = CustomerHistory(customer_id)
    for row in conn.execute(query.order_by(t.c.occurred_at, t.c.event_id)).all():
        _add(history, row)
    return history


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
        sa.select(*_columns(t), who)
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
        _add(current, row)
    if current is not None:
        yield current
