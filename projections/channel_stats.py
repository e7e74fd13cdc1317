"""Channel statistics per day: a fold of events into counter deltas. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date

from schemas import Envelope

DayKey = tuple[date, str, str]  # (UTC day, channel, type)


def day_key(event: Envelope) -> DayKey:
    """The counter an event adds one to."""
    return (event.occurred_at.astimezone(UTC).date(), event.channel.value, event.type)


def daily_counts(events: Iterable[Envelope]) -> Counter[DayKey]:
    """How many events each (day, channel, type) gains from `events`; adding is commutative."""
    return Counter(map(day_key, events))
