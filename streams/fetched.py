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

from streams.pipeline import LogRecord

PartitionKey = tuple[str, int]


class Fetched:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._waiting: deque[LogRecord] = deque()
        self._changed = asyncio.Condition()
        self._done: dict[PartitionKey, int] = {}
        # Counts the drops; per partition, the count at its last drop. A fetch that began
        # before a partition's drop holds records from before its seek: they are stale.
        self.epoch = 0
        self._dropped_at: dict[PartitionKey, int] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    async def put(self, records: Sequence[LogRecord], fetched_at: int) -> None:
        """Add a fetch begun at epoch `fetched_at`, once fewer than `limit` records wait (at
        once when none do), without the records of partitions dropped since it began:
        added after the drop, they would follow the seek's records out of order."""
        async with self._changed:
            await self._changed.wait_for(lambda: len(self._waiting) < self.limit)
            if self.epoch != fetched_at:
                dropped = self._dropped_at
                records = [
                    r for r in records if dropped.get((r.topic, r.partition), -1) <= fetched_at
                ]
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
        """Forget the waiting records of `partitions` (revoked, or sought elsewhere)."""
        gone = set(partitions)
        async with self._changed:
            self.epoch += 1
            self._dropped_at.update(dict.fromkeys(gone, self.epoch))
            if gone and self._waiting:
                kept = (r for r in self._waiting if (r.topic, r.partition) not in gone)
                self._waiting = deque(kept)
                self._changed.notify_all()

    def done(self, batch: Iterable[LogRecord]) -> None:
        """`batch` is stored: its partitions' next offsets go into the next commit."""
        for r in batch:
            key = (r.topic, r.partition)
            if r.offset + 1 > self._done.get(key, 0):
                self._done[key] = r.offset + 1

    def next_offsets(self) -> dict[PartitionKey, int]:
        """The next offset of each partition stored since the last call."""
        offsets, self._done = self._done, {}
        return offsets
