"""Writes batches of events into PostgreSQL: one transaction per batch, exactly-once effect.

Kafka delivers at least once. A batch's rows and the per-partition positions are committed
together; records below a stored position are skipped, and rows are keyed by event_id, so a
redelivered or duplicated event changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert

from projections.tables import metadata, positions, timeline
from projections.timeline import timeline_entry
from schemas import Envelope

_SCHEMA_LOCK = 7_243_001  # advisory lock id: workers starting together create tables once


@dataclass(frozen=True)
class PositionedEvent:
    """An event with where it sits in the log."""

    topic: str
    partition: int
    offset: int
    event: Envelope


@dataclass(frozen=True)
class BatchResult:
    projected: int
    skipped: int


def create_schema(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": _SCHEMA_LOCK})
        metadata.create_all(conn)


class ProjectionStore:
    def __init__(self, engine: sa.Engine, consumer: str) -> None:
        self.engine = engine
        self.consumer = consumer

    def apply_batch(self, batch: Sequence[PositionedEvent]) -> BatchResult:
        if not batch:
            return BatchResult(0, 0)
        with self.engine.begin() as conn:
            known = self._positions(conn, {(item.topic, item.partition) for item in batch})
            fresh = [
                item for item in batch if item.offset >= known.get((item.topic, item.partition), 0)
            ]
            if fresh:
                rows = [timeline_entry(item.event).__dict__ for item in fresh]
                conn.execute(insert(timeline).on_conflict_do_nothing(), rows)
                self._advance(conn, fresh)
        return BatchResult(len(fresh), len(batch) - len(fresh))

    def _positions(
        self, conn: sa.Connection, keys: set[tuple[str, int]]
    ) -> dict[tuple[str, int], int]:
        rows = conn.execute(
            sa.select(positions.c.topic, positions.c.partition, positions.c.next_offset)
            .where(positions.c.consumer == self.consumer)
            .with_for_update()
        )
        return {
            (r.topic, r.partition): r.next_offset for r in rows if (r.topic, r.partition) in keys
        }

    def _advance(self, conn: sa.Connection, fresh: Sequence[PositionedEvent]) -> None:
        next_offsets: dict[tuple[str, int], int] = {}
        for item in fresh:
            key = (item.topic, item.partition)
            next_offsets[key] = max(next_offsets.get(key, 0), item.offset + 1)
        stmt = insert(positions)
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=[positions.c.consumer, positions.c.topic, positions.c.partition],
                set_={
                    "next_offset": sa.func.greatest(
                        positions.c.next_offset, stmt.excluded.next_offset
                    )
                },
            ),
            [
                {"consumer": self.consumer, "topic": t, "partition": p, "next_offset": o}
                for (t, p), o in next_offsets.items()
            ],
        )
