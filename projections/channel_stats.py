"""Channel statistics per day: a fold of events into counter deltas. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date

from schemas import Envelope

DayKey = tuple[date, str, str]  # (UTC day, channel, type)


def daily_counts(events: Iterable[Envelope]) -> Counter[DayKey]:
    """How many events each (day, channel, type) gains from `events`; adding is commutative."""
    counts: Counter[DayKey] = Counter()
    for event in events:
        day = event.occurred_at.astimezone(UTC).date()
        counts[(day, event.channel.value, event.type)] += 1
    return counts
