"""Liveness: notice a worker that is alive but makes no progress, so it can be restarted.

A partition is stalled when it has lag (the log's head is past the stored position) and
its stored position has not moved for `stall_timeout_s`, judged from what Kafka and
PostgreSQL say, not from the worker's own belief. A worker that is waiting for a reason it
knows (PostgreSQL down, the dead-letter topic refusing a write) is not stalled: it says so
in its health and resumes by itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

PartitionKey = tuple[str, int]


@dataclass(frozen=True)
class Stall:
    partition: PartitionKey
    position: int
    head: int
    seconds: float


@dataclass
class Watchdog:
    stall_timeout_s: float
    # Per lagging partition: the stored position when it was first seen, and when.
    _unmoved: dict[PartitionKey, tuple[int, float]] = field(default_factory=dict)

    def observe(
        self,
        now: float,
        positions: Mapping[PartitionKey, int],
        heads: Mapping[PartitionKey, int],
        watched: set[PartitionKey],
    ) -> list[Stall]:
        """Record one look at the partitions in `watched`; return those stalled."""
        stalls = []
        for key in sorted(watched):
            position, head = positions.get(key, 0), heads.get(key, 0)
            seen = self._unmoved.get(key)
            if head <= position:
                self._unmoved.pop(key, None)
            elif seen is None or seen[0] != position:
                self._unmoved[key] = (position, now)
            elif now - seen[1] >= self.stall_timeout_s:
                stalls.append(Stall(key, position, head, now - seen[1]))
        for key in set(self._unmoved) - watched:
            del self._unmoved[key]
        return stalls

    def excuse(self) -> None:
        """The worker is waiting for a reason it knows: start judging afresh after it."""
        self._unmoved.clear()
