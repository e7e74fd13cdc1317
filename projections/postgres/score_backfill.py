"""Score state rows in PostgreSQL: the orders kept apart from the state document, and the
state of a version projected before the state existed, folded once from its timeline
when the version's schema is brought up to date."""

from __future__ import annotations

import sqlalchemy as sa

from projections.postgres.history import event_from_timeline
from projections.postgres.tables import Tables
from projections.score_ledger import ledger_entry
from projections.score_state import ScoreState

ORDER_COLUMNS = ("customer_id", "currency", "order_id", "at", "event_id", "amount", "contribution")
# An order keeps its latest purchase, whichever batch brings it (the state's rule).
LATEST_ORDER = """(customer_id, currency, order_id) DO UPDATE SET
    at = EXCLUDED.at, event_id = EXCLUDED.event_id, amount = EXCLUDED.amount,
    contribution = EXCLUDED.contribution
    WHERE (EXCLUDED.at, EXCLUDED.event_id) > (score_orders.at, score_orders.event_id)"""


def order_rows(key: str, state: ScoreState) -> list[tuple[object, ...]]:
    """The rows of `score_orders` for the orders `state` holds."""
    return [
        (key, currency, order_id, at, event_id, amount, contribution)
        for currency, money in sorted(state.money.items())
        for order_id, (at, event_id, amount, contribution) in sorted(money.orders.items())
    ]


_CHUNK = 2000  # keys per insert


def backfill_score_state(conn: sa.Connection, t: Tables) -> int:
    """Fold every timeline row into its key's state; return the number of keys written.
    Rows projected before the ledger existed (no score_inputs) are read from the payload."""
    tl = t.timeline
    rows = conn.execute(
        sa.select(
            tl.c.event_id,
            tl.c.customer_id,
            tl.c.occurred_at,
            tl.c.channel,
            tl.c.type,
            tl.c.campaign_id,
            tl.c.score_inputs,
            sa.case((tl.c.score_inputs.is_(None), tl.c.payload)).label("payload"),
        )
        .order_by(tl.c.customer_id)
        .execution_options(stream_results=True, yield_per=5000)
    )
    written = 0
    states: list[dict[str, object]] = []
    orders: list[dict[str, object]] = []

    def keep(key: str, state: ScoreState) -> None:
        if state.last_at is not None:
            states.append({"customer_id": key, "state": state.to_json(with_orders=False)})
            orders.extend(
                dict(zip(ORDER_COLUMNS, row, strict=True)) for row in order_rows(key, state)
            )

    key: str | None = None
    state = ScoreState()
    for row in rows:
        if row.customer_id != key:
            if key is not None:
                keep(key, state)
            key, state = row.customer_id, ScoreState()
            if len(states) >= _CHUNK:
                written += _write(conn, t, states, orders)
        entry = row.score_inputs
        if entry is None:
            entry = ledger_entry(event_from_timeline(row))
        state.fold(str(row.event_id), row.occurred_at, entry)
    if key is not None:
        keep(key, state)
    return written + _write(conn, t, states, orders)


def _write(
    conn: sa.Connection,
    t: Tables,
    states: list[dict[str, object]],
    orders: list[dict[str, object]],
) -> int:
    n = len(states)
    for table, rows in ((t.score_state, states), (t.score_orders, orders)):
        if rows:
            conn.execute(table.insert(), rows)
        rows.clear()
    return n
