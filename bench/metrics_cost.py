"""What the worker's metrics cost per event, for figure E.

The worker records its metrics once per batch: the store sums up the batch's new events
(`projections.store.projected_summary`), then the worker calls `WorkerMetrics.observe_batch`
and `observe_positions`. This times exactly those calls over the workload's own events in
batches of the worker's size, and one scrape of the registry they fill. The harness
divides the per-event cost by E's time per event, measured in the same run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from observability.exposition import scrape
from observability.worker import WorkerMetrics
from projections.store import BatchResult, PositionedEvent, projected_summary
from schemas import Envelope
from streams.health import Health
from streams.pipeline import BatchOutcome

PARTITIONS = 6


def metrics_cost(
    events: Sequence[Envelope], *, batch_size: int = 1000, rounds: int = 3
) -> dict[str, Any]:
    """Seconds per event of the worker's metric bookkeeping (best of `rounds` passes over
    `events`), and of one scrape."""
    stamped = [e if e.received_at else e.model_copy(update={"received_at": _now()}) for e in events]
    batches = [
        [
            PositionedEvent("t", (start + i) % PARTITIONS, start + i, e)
            for i, e in enumerate(stamped[start : start + batch_size])
        ]
        for start in range(0, len(stamped), batch_size)
    ]
    metrics = WorkerMetrics(Health())
    best = float("inf")
    for _ in range(rounds):
        began = time.perf_counter()
        for batch in batches:
            types, newest = projected_summary([p.event for p in batch if p.event is not None])
            outcome = BatchOutcome()
            outcome.add(BatchResult(len(batch), 0, 0, types, newest))
            outcome.transaction_seconds.append(0.1)
            metrics.observe_batch(outcome, 0.2, len(batch))
            stored = {("t", p): batch[-1].offset + 1 for p in range(PARTITIONS)}
            heads = {key: offset + 500 for key, offset in stored.items()}
            metrics.observe_positions(heads, stored)
        best = min(best, time.perf_counter() - began)
    began = time.perf_counter()
    scrapes = 20
    for _ in range(scrapes):
        page = scrape(metrics.registry)
    return {
        "per_event_s": best / len(stamped),
        "per_batch_s": best / len(batches),
        "batch_size": batch_size,
        "scrape_s": (time.perf_counter() - began) / scrapes,
        "scrape_bytes": len(page),
    }


def _now() -> datetime:
    return datetime.now(UTC)
