"""A customer's events read back from the timeline, for scores computed on demand."""

from __future__ import annotations

from collections.abc import Iterator
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
    conn: sa.Connection, tables: Tables, customer_id: str, *, as_of: datetime | None = None
) -> CustomerHistory:
    t = tables.timeline
    query = sa.select(t).where(t.c.customer_id == customer_id)
    if as_of is not None:
        query = query.where(t.c.occurred_at <= as_of)
    rows = conn.execute(query.order_by(t.c.occurred_at, t.c.event_id))
    return CustomerHistory.from_events(customer_id, (event_from_timeline(r) for r in rows))


def all_histories(
    conn: sa.Connection, tables: Tables, *, as_of: datetime
) -> Iterator[CustomerHistory]:
    """Every customer's history up to as_of, streamed in customer order."""
    t = tables.timeline
    rows = conn.execution_options(yield_per=5000).execute(
        sa.select(t).where(t.c.occurred_at <= as_of).order_by(t.c.customer_id)
    )
    current: CustomerHistory | None = None
    for row in rows:
        if current is None or current.customer_id != row.customer_id:
            if current is not None:
                yield current
            current = CustomerHistory(row.customer_id)
        current.add(event_from_timeline(row))
    if current is not None:
        yield current
