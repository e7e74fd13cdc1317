"""The projection store in memory: the same batch semantics as PostgreSQL, no server.

Tests of the worker's pipeline and of the folds' exactly-once effect run against this twin;
the contract tests run the same cases against both (tests/unit/test_store_contract.py and
tests/integration/test_store_contract.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass, field
from typing import Any

from projections import profile as profile_projector
from projections.channel_stats import DayKey, day_key
from projections.errors import PositionGap, RecordRefused
from projections.profile import Profile
from projections.purchases import purchase_row
from projections.store import BatchResult, PositionedEvent, find_gaps
from projections.timeline import TimelineEntry, timeline_entry
from schemas import Envelope

PartitionKey = tuple[str, int]


@dataclass
class InMemoryStore:
    """One projection version held in dicts. A batch is all or nothing, as a transaction."""

    timeline: dict[Any, TimelineEntry] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    purchases: dict[Any, tuple[Any, ...]] = field(default_factory=dict)
    channel_daily: Counter[DayKey] = field(default_factory=Counter)
    stored_positions: dict[PartitionKey, int] = field(default_factory=dict)

    def positions(self, keys: set[PartitionKey]) -> dict[PartitionKey, int]:
        return {k: self.stored_positions[k] for k in keys if k in self.stored_positions}

    def apply_batch(
        self,
        batch: Sequence[PositionedEvent],
        *,
        log_starts: Mapping[PartitionKey, int] | None = None,
    ) -> BatchResult:
        stored = self.stored_positions
        fresh = [r for r in batch if r.offset >= stored.get((r.topic, r.partition), 0)]
        if gaps := find_gaps(fresh, stored, log_starts or {}):
            raise PositionGap(gaps)
        events = [r.event for r in fresh if r.event is not None]
        new: dict[Any, tuple[PositionedEvent, Envelope]] = {}
        for r in fresh:
            if r.event is not None and r.event.event_id not in self.timeline:
                new.setdefault(r.event.event_id, (r, r.event))
        # Compute everything first, then commit it at once: a refusal changes nothing.
        timeline: dict[Any, TimelineEntry] = {}
        profiles: dict[str, Profile] = {}
        purchases: dict[Any, tuple[Any, ...]] = {}
        days: Counter[DayKey] = Counter()
        for record, event in new.values():
            try:
                timeline[event.event_id] = timeline_entry(event)
                customer = event.customer.partition_key
                profiles[customer] = profile_projector.apply(
                    profiles.get(customer, self.profiles.get(customer)), event
                )
                if (row := purchase_row(event)) is not None:
                    purchases[event.event_id] = astuple(row)
                days[day_key(event)] += 1
            except Exception as exc:
                refused = RecordRefused(event.event_id, "fold", exc)
                refused.position = (record.topic, record.partition, record.offset)
                raise refused from exc
        self.timeline.update(timeline)
        self.profiles.update(profiles)
        self.purchases.update(purchases)
        self.channel_daily.update(days)
        for r in fresh:
            key = (r.topic, r.partition)
            stored[key] = max(stored.get(key, 0), r.offset + 1)
        return BatchResult(len(new), len(events) - len(new), len(batch) - len(fresh))
