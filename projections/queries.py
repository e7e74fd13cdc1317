"""Read queries over the projections, shared by the CLI and the HTTP API."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from projections.errors import CustomerNotFound
from projections.tables import timeline


def customer_timeline(
    conn: sa.Connection, customer_id: str, *, limit: int = 50
) -> list[dict[str, Any]]:
    """The customer's touchpoints in event-time order (oldest first)."""
    rows = (
        conn.execute(
            sa.select(timeline)
            .where(timeline.c.customer_id == customer_id)
            .order_by(timeline.c.occurred_at, timeline.c.event_id)
            .limit(limit)
        )
        .mappings()
        .all()
    )
    if not rows:
        raise CustomerNotFound(customer_id)
    return [dict(row) for row in rows]


def count_projected(conn: sa.Connection) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(timeline)).scalar_one())
