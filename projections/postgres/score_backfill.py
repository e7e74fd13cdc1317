"""Score state for a version projected before the state existed: folded once from the
timeline when the version's schema is brought up to date."""

from __future__ import annotations

import sqlalchemy as sa

from projections.postgres.history import event_from_timeline
from projections.postgres.tables import Tables
from projections.score_ledger import ledger_entry
from projections.score_state import ScoreState

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
    pending: list[dict[str, object]] = []
    key: str | None = None
    state = ScoreState()
    for row in rows:
        if row.customer_id != key:
            if key is not None and state.last_at is not None:
                pending.append({"customer_id": key, "state": state.to_json()})
            key, state = row.customer_id, ScoreState()
            if len(pending) >= _CHUNK:
                written += _write(conn, t, pending)
        entry = row.score_inputs
        if entry is None:
            entry = ledger_entry(event_from_timeline(row))
        state.fold(str(row.event_id), row.occurred_at, entry)
    if key is not None and state.last_at is not None:
        pending.append({"customer_id": key, "state": state.to_json()})
    return written + _write(conn, t, pending)


def _write(conn: sa.Connection, t: Tables, pending: list[dict[str, object]]) -> int:
    n = len(pending)
    if pending:
        conn.execute(t.score_state.insert(), pending)
    pending.clear()
    return n
