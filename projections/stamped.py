"""Last-writer-wins in event time, deterministic whatever the arrival order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, order=True)
class Stamp:
    """When a value was set (event time), with the event_id as a tie-breaker.

    Comparing stamps instead of arrival order is what lets a late event land in its place:
    it wins only over values set before it happened.
    """

    at: datetime
    event_id: str

    def to_json(self) -> dict[str, str]:
        return {"at": self.at.isoformat(), "event_id": self.event_id}


@dataclass(frozen=True)
class Stamped:
    value: Any
    stamp: Stamp

    def newer_than(self, other: Stamped | None) -> bool:
        return other is None or self.stamp > other.stamp
