"""Score checkpoints: a long history's score state as of points in it.

A customer with CHECKPOINT_EVERY events or more gets the state of its keys as of every
CHECKPOINT_EVERY-th event (`score_checkpoints`), so scores as of an earlier time
(projections/postgres/queries.py) fold only what came after the checkpoint before it.
The population scorer keeps them; the worker writes nothing for them. A checkpoint holds
while the events up to its time number what they did when it was taken, and readers check
that in the statement that reads it: a late event before it, or a merge that changes the
customer's keys, makes them fold from the start until the scorer takes it again.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from projections.postgres.bulk import json_text
from projections.score_state import ScoreState

CHECKPOINT_EVERY = 1000


def _sql(conn: sa.Connection, schema: str, text: str, **values: Any) -> Any:  # a CursorResult
    names = {name: f'"{schema}".{name}' for name in ("timeline", "score_checkpoints")}
    return conn.execute(sa.text(text.format(**names)), values)


def extend_checkpoints(
    conn: sa.Connection, schema: str, customer_id: str, keys: list[str], total: int
) -> None:
    """Keep a long history's checkpoints (score_checkpoints): drop those a late event
    or another set of keys made stale, then fold on from the last one that holds,
    taking one every CHECKPOINT_EVERY events (never between two events at one time)."""
    held = _sql(
        conn,
        schema,
        """SELECT c.at, c.events, c.state::text AS state,
                  c.keys = CAST(:keys AS text[]) AND c.events =
                      (SELECT count(*) FROM {timeline} t
                        WHERE t.customer_id = ANY(CAST(:keys AS text[]))
                          AND t.occurred_at <= c.at) AS holds
             FROM {score_checkpoints} c WHERE c.customer_id = :c ORDER BY c.at""",
        c=customer_id,
        keys=keys,
    ).all()
    broken = next((point.at for point in held if not point.holds), None)
    if broken is not None:
        _sql(
            conn,
            schema,
            "DELETE FROM {score_checkpoints} WHERE customer_id = :c AND at >= :at",
            c=customer_id,
            at=broken,
        )
        held = [point for point in held if point.at < broken]
    last = held[-1] if held else None
    counted = last.events if last else 0
    if total - counted < CHECKPOINT_EVERY:
        return
    state = ScoreState.from_json(orjson.loads(last.state)) if last else ScoreState()
    rows = _sql(
        conn,
        schema,
        """SELECT event_id::text, occurred_at, score_inputs::text FROM {timeline}
            WHERE customer_id = ANY(CAST(:keys AS text[]))
              AND occurred_at > coalesce(CAST(:after AS timestamptz), '-infinity')
            ORDER BY occurred_at, event_id""",
        keys=keys,
        after=last.at if last else None,
    ).all()
    points = []
    since = 0
    for n, (event_id, at, inputs) in enumerate(rows):
        if inputs is None:
            return  # projected before the ledger: readers fold payloads, not this
        state.fold(event_id, at, orjson.loads(inputs))
        counted += 1
        since += 1
        if since >= CHECKPOINT_EVERY and (n + 1 == len(rows) or rows[n + 1][1] > at):
            points.append(
                {
                    "c": customer_id,
                    "at": at,
                    "keys": keys,
                    "events": counted,
                    "state": json_text(state.to_json()),
                }
            )
            since = 0
    if points:
        conn.execute(
            sa.text(
                f'INSERT INTO "{schema}".score_checkpoints '
                "(customer_id, at, keys, events, state) "
                "VALUES (:c, :at, :keys, :events, CAST(:state AS jsonb))"
            ),
            points,
        )
