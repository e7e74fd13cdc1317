"""Rebuild a projection version from offset 0 of the touchpoint topic.

The replayer reads every partition directly (no consumer group: it must not disturb the
live worker's offsets) and runs each batch through the same `BatchPipeline` as the live
worker, into the version's own schema: the same contract, the same folds, the same
isolation of records that cannot be stored. A record the live worker parked is found in
the dead-letter topic and not parked again. Its progress is the version's positions
table, so an interrupted replay resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kafka import TopicPartition

from projections.store import ProjectionStore
from schemas.errors import RapportError
from streams.deadletter import DeadLetterWriter
from streams.kafka_clients import consumer
from streams.pipeline import REPLAY_RETRY, BatchPipeline, LogRecord, RetryPolicy, Unsealer

Progress = Callable[[int, int], None]  # (records done, records in total)


class ReplayError(RapportError):
    """A replay could not run; the message says why."""


@dataclass
class ReplayStats:
    records: int = 0
    projected: int = 0
    parked: int = 0  # records that cannot be projected: in the dead-letter topic
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class Replayer:
    def __init__(
        self,
        store: ProjectionStore,
        bootstrap: str,
        topic: str,
        *,
        dlq_topic: str | None = None,  # None: TOPIC.dlq
        batch_size: int = 20_000,
        partitions: Iterable[int] | None = None,  # None: every partition of the topic
        retry: RetryPolicy = REPLAY_RETRY,
        unsealer: Unsealer | None = None,
    ) -> None:
        self.store = store
        self.topic = topic
        self.batch_size = batch_size
        self.dead_letters = DeadLetterWriter(bootstrap, dlq_topic or f"{topic}.dlq")
        self.pipeline = BatchPipeline(
            store, self.dead_letters, self._log_starts, retry=retry, unsealer=unsealer
        )
        self.consumer = consumer(
            bootstrap,
            auto_offset_reset="earliest",  # a stored position retention has deleted
            # The broker checks CRCs on write; recomputing them in pure Python took a
            # third of the replay's time.
            check_crcs=False,
            max_poll_records=batch_size,
            fetch_max_bytes=64 * 1024 * 1024,
            max_partition_fetch_bytes=16 * 1024 * 1024,
        )
        existing = self.consumer.partitions_for_topic(topic)
        if not existing:
            raise ReplayError(f"topic {topic} does not exist")
        wanted = existing if partitions is None else set(partitions)
        if unknown := wanted - existing:
            raise ReplayError(f"topic {topic} has no partition {sorted(unknown)}")
        self.partitions = [TopicPartition(topic, p) for p in sorted(wanted)]
        self.consumer.assign(self.partitions)

    def close(self) -> None:
        self.consumer.close()
        self.dead_letters.close()

    def _log_starts(self, keys: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        found = self.consumer.beginning_offsets([TopicPartition(t, p) for t, p in keys])
        return {(tp.topic, tp.partition): offset for tp, offset in found.items()}

    def head(self) -> dict[int, int]:
        """The next offset of every partition: the live head right now."""
        return {
            tp.partition: offset
            for tp, offset in self.consumer.end_offsets(self.partitions).items()
        }

    def done(self) -> dict[int, int]:
        stored = self.store.positions({(self.topic, tp.partition) for tp in self.partitions})
        return {tp.partition: stored.get((self.topic, tp.partition), 0) for tp in self.partitions}

    def run(
        self, until: dict[int, int] | None = None, progress: Progress | None = None
    ) -> ReplayStats:
        """Apply every record from the stored positions up to `until` (default: the head
        now), exclusive, and stop exactly there."""
        until = until if until is not None else self.head()
        until = {tp.partition: until.get(tp.partition, 0) for tp in self.partitions}
        start = self.done()
        total = sum(max(0, until[p] - start[p]) for p in until)
        for tp in self.partitions:
            self.consumer.seek(tp, start[tp.partition])
        remaining = {tp for tp in self.partitions if start[tp.partition] < until[tp.partition]}
        self.consumer.pause(*(set(self.partitions) - remaining))
        stats = ReplayStats()
        began = time.monotonic()
        while remaining:
            fetched = self.consumer.poll(timeout_ms=1000, max_records=self.batch_size)
            batch = [
                LogRecord.of(r)
                for tp, records in fetched.items()
                for r in records
                if r.offset < until[tp.partition]
            ]
            if batch:
                outcome = self.pipeline.run(batch)
                stats.records += len(batch)
                stats.projected += outcome.projected
                stats.parked += outcome.parked + outcome.parked_before
                if progress:
                    progress(stats.records, total)
            finished = {tp for tp in remaining if self.consumer.position(tp) >= until[tp.partition]}
            if finished:
                self.consumer.pause(*finished)
                remaining -= finished
        stats.seconds = time.monotonic() - began
        return stats
