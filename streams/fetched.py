"""Records fetched from Kafka and not yet stored: the hand-over from the consumer's fetch
loop to the batches, in order per partition.

A fetch comes in as one list of records; a batch goes out as up to `batch_size` records,
taken across fetches or cut from one. The fetch loop waits while `limit` records are
waiting, so a database that is slow or away holds a bounded amount of memory, and the
next fetch overlaps the batch being stored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence

from projections.store import advance
from streams.pipeline import LogRecord

PartitionKey = tuple[str, int]


class Fetched:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting: deque[LogRecord] = deque()
        self._changed = asyncio.Condition()
        self._done: dict[PartitionKey, int] = {}
        # Held by the fetch loop from a fetch until its records are in, and by a seek from
        # dropping a partition's records until the consumer is sought: so no record
        # fetched before a seek is added after it (out of order, it would leave a gap).
        self.fetching = asyncio.Lock()

    def __len__(self) -> int:
        return len(self._waiting)

    async def put(self, records: Sequence[LogRecord]) -> None:
        """Add a fetch, once fewer than `limit` records wait (at once when none do)."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._waiting) < self.limit)
            self._waiting.extend(records)
            self._changed.notify_all()

    async def take(self, batch_size: int) -> list[LogRecord]:
        """The next batch: up to `batch_size` of the waiting records, as soon as any wait."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self._waiting))
            waiting = self._waiting
            batch = [waiting.popleft() for _ in range(min(batch_size, len(waiting)))]
            self._changed.notify_all()
            return batch

    async def drop(self, partitions: Iterable[PartitionKey]) -> None:
        """Forget the waiting records of `partitions` (sought elsewhere: hold `fetching`)."""
        gone = set(partitions)
        async with self._changed:
            if gone and self._waiting:
                kept = (r for r in self._waiting if (r.topic, r.partition) not in gone)
                self._waiting = deque(kept)
                self._changed.notify_all()

    def done(self, batch: Iterable[LogRecord]) -> None:
        """`batch` is stored: its partitions' next offsets go into the next commit."""
        advance(self._done, batch)

    def next_offsets(self) -> dict[PartitionKey, int]:
        """The next offset of each partition stored since the last call."""
        offsets, self._done = self._done, {}
        return offsets
