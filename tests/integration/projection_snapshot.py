"""Compare projection versions: every read-model table's rows, in a stable order."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from projections.postgres.tables import build_tables


def snapshot(engine: sa.Engine, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    t = build_tables(schema)
    # score_state too: its sums are exact and order-free, so a run with faults, kills and
    # redeliveries must leave it byte for byte as a clean run does (nothing folded twice).
    tables = [t.timeline, t.customers, t.purchases, t.channel_daily, t.score_state]
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for table in tables:
            # received_at is when it arrived, changed_xid which transaction wrote it last:
            # bookkeeping of one run, not what it projected.
            cols = [c for c in table.columns if c.name not in ("received_at", "changed_xid")]
            rows = conn.execute(sa.select(*cols).order_by(*table.primary_key.columns)).all()
            out[table.name] = [tuple(r) for r in rows]
    return out


def projected_count(engine: sa.Engine, schema: str) -> int:
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(sa.text(f'SELECT count(*) FROM "{schema}".timeline')).scalar_one()
            )
    except sa.exc.ProgrammingError:
        return 0


def positions_total(engine: sa.Engine, schema: str) -> int:
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text(f'SELECT coalesce(sum(next_offset), 0) FROM "{schema}".positions')
                ).scalar_one()
            )
    except sa.exc.ProgrammingError:
        return 0
