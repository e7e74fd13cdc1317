"""One batch of log records into the projections: nothing skipped, nothing counted twice.

The live worker and the replay run every batch through `BatchPipeline.run`, which returns
only once each record of the batch is either stored or parked in the dead-letter topic:

1. Read the stored positions; records below them are redelivered and dropped. A batch
   that would jump past a stored position (the database is behind the log) raises
   `PositionGap`, unless the records in between are gone from the log. A batch that goes
   on exactly where this pipeline's last stored batch ended takes that position without
   asking (the store checks it again inside its transaction).
2. Open the sealed personal fields (`privacy.unsealing`): a record whose customer was
   erased goes on as an ErasedRecord (counted, not folded), one whose box does not open
   is parked (stage `unseal`). Decode each record; one the contract refuses is parked
   (stage `decode`).
3. Store the batch in one transaction. If that fails because of one record (see
   `streams.faults`), that record is found, by its name when the projection code names it
   or by splitting the batch in halves when PostgreSQL does not, parked with the stage
   that refused it, and the rest is stored. Any other failure (connection lost, server
   restarting, read-only, deadlock) is waited out: the whole batch is retried with backoff
   until it succeeds.
4. A dead-letter write that fails holds the batch the same way: a record is never
   dropped because it could not be parked.

Kafka offsets may be committed only after `run` returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from kafka.errors import KafkaError

from projections.errors import PositionGap, RecordRefused, describe
from projections.store import BatchResult, ErasedRecord, PositionedEvent, advance, find_gaps
from schemas import Envelope, decode_event
from schemas.errors import ContractError, RapportError
from streams.deadletter import DeadLetterFailed
from streams.faults import Fault, Kind, classify
from streams.health import Health

log = logging.getLogger("rapport.pipeline")

T = TypeVar("T")
PartitionKey = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LogRecord:
    """A record as read from the touchpoint topic, whichever client read it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()

    @classmethod
    def of(cls, record: Any) -> LogRecord:
        """From a kafka-python ConsumerRecord or a faust Message (same attribute names)."""
        return cls(
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.value,
            tuple(record.headers or ()),
        )


class BatchStore(Protocol):
    def positions(self, keys: set[PartitionKey]) -> dict[PartitionKey, int]: ...

    def apply_batch(
        self,
        batch: Sequence[PositionedEvent],
        *,
        log_starts: Mapping[PartitionKey, int] | None = None,
    ) -> BatchResult: ...


class DeadLetters(Protocol):
    def park(
        self,
        *,
        topic: str,
        partition: int,
        offset: int,
        key: bytes | None,
        value: bytes | None,
        headers: Sequence[tuple[str, bytes]] | None,
        error: BaseException | str,
        error_type: str | None = None,
        stage: str,
    ) -> bool: ...


class Unsealer(Protocol):
    """Opens sealed personal fields (`privacy.unsealing.Unsealer`): per value, the bytes to
    decode, an ErasedRecord (the key was destroyed), or the error that makes it unreadable."""

    def open_all(
        self, values: Sequence[bytes | None]
    ) -> list[bytes | ErasedRecord | RapportError]: ...


LogStarts = Callable[[set[PartitionKey]], dict[PartitionKey, int]]


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A record that could not be opened (stage `unseal`) or decoded (stage `decode`)."""

    stage: str
    error: RapportError


Decoded = Envelope | ErasedRecord | Unreadable


@dataclass(frozen=True)
class Prepared:
    """A batch opened and decoded, in order, not yet stored (`BatchPipeline.prepare`)."""

    records: Sequence[LogRecord]
    decoded: Sequence[Decoded]


def _decode(opened: bytes | ErasedRecord | RapportError) -> Decoded:
    if isinstance(opened, ErasedRecord):
        return opened
    if isinstance(opened, RapportError):
        return Unreadable("unseal", opened)
    try:
        return decode_event(opened)
    except ContractError as exc:
        return Unreadable("decode", exc)


class PipelineStopped(RapportError):
    """The pipeline was asked to stop while it waited; the batch was not stored."""


class GaveUp(RapportError):
    """A batch could not be stored within the retry policy's time; the message says why."""


@dataclass(frozen=True)
class RetryPolicy:
    first_delay_s: float = 0.1
    max_delay_s: float = 2.0
    give_up_after_s: float | None = None  # None: keep trying (the live worker)


# A replay is run by someone waiting for it: a database that does not answer is waited for
# this long (a restart, a failover) before the replay fails, naming why.
REPLAY_RETRY = RetryPolicy(give_up_after_s=120.0)


@dataclass
class BatchOutcome:
    projected: int = 0  # new events folded into the projections
    duplicates: int = 0  # events whose event_id was already projected
    redelivered: int = 0  # records below the stored position: already done
    parked: int = 0  # records parked in the dead-letter topic by this batch
    parked_before: int = 0  # records found parked already (by the live worker, or earlier)
    # For the worker's metrics: new events per type, records parked per (stage, error
    # type), each committed transaction's seconds, the latest arrival among new events.
    projected_by_type: Counter[str] = field(default_factory=Counter)
    parked_by_reason: Counter[tuple[str, str]] = field(default_factory=Counter)
    transaction_seconds: list[float] = field(default_factory=list)
    newest_received: datetime | None = None

    def add(self, result: BatchResult) -> None:
        self.projected += result.projected
        self.duplicates += result.duplicates
        self.redelivered += result.redelivered
        self.projected_by_type.update(result.projected_types)
        if result.newest_received is not None and (
            self.newest_received is None or result.newest_received > self.newest_received
        ):
            self.newest_received = result.newest_received


@dataclass
class BatchPipeline:
    batches: BatchStore
    dead_letters: DeadLetters
    log_starts: LogStarts
    health: Health = field(default_factory=Health)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    stop: threading.Event = field(default_factory=threading.Event)
    unsealer: Unsealer | None = None
    # Next offset per partition as of this pipeline's last stored batch. Only a shortcut:
    # the store compares every batch with its stored positions in its own transaction, so
    # a stale entry (another worker moved on) costs a refused batch, never a lost record.
    _stored_next: dict[PartitionKey, int] = field(default_factory=dict)

    def run(self, records: Sequence[LogRecord]) -> BatchOutcome:
        """Store or park every record of `records`; see the module's docstring."""
        return self.store(self.prepare(records))

    def prepare(self, records: Sequence[LogRecord]) -> Prepared:
        """Step 2 ahead of time: open and decode every record, with no effect on the store or
        the dead-letter topic, so it can run while the batch before is being stored."""
        opened = self._opened(records)
        return Prepared(records, [_decode(value) for value in opened])

    def store(self, prepared: Prepared) -> BatchOutcome:
        """Store or park every record `prepare` made ready; see the module's docstring."""
        outcome = BatchOutcome()
        records = prepared.records
        if not records:
            return outcome
        first: dict[PartitionKey, int] = {}
        for r in records:
            key = (r.topic, r.partition)
            first[key] = min(r.offset, first.get(key, r.offset))
        # A batch the store refuses after the shortcut (the database is behind it: restored
        # from a backup) is run again from the database's positions; nothing of it was
        # stored, and the dead-letter writer never parks a position twice.
        if all(self._stored_next.get(key) == offset for key, offset in first.items()):
            try:
                return self._run(prepared, {key: self._stored_next[key] for key in first})
            except PositionGap:
                pass
        return self._run(prepared, self._until_done(lambda: self.batches.positions(set(first))))

    def _run(self, prepared: Prepared, stored: Mapping[PartitionKey, int]) -> BatchOutcome:
        outcome = BatchOutcome()
        records = prepared.records
        try:
            fresh = [
                (r, decoded)
                for r, decoded in zip(records, prepared.decoded, strict=True)
                if r.offset >= stored.get((r.topic, r.partition), 0)
            ]
            outcome.redelivered = len(records) - len(fresh)
            log_starts = self._log_starts_for_gaps([r for r, _ in fresh], stored)
            batch = [self._positioned(r, decoded, outcome) for r, decoded in fresh]
            by_position = {(r.topic, r.partition, r.offset): r for r, _ in fresh}
            self._store(batch, by_position, log_starts, outcome)
        except BaseException:
            self._stored_next.clear()  # ask the database next time
            raise
        advance(self._stored_next, (r for r, _ in fresh))
        self.health.progressed(outcome.projected, outcome.parked)
        return outcome

    # -- 1. where the batch starts -------------------------------------------------------
    def _log_starts_for_gaps(
        self, fresh: Sequence[LogRecord], stored: Mapping[PartitionKey, int]
    ) -> dict[PartitionKey, int]:
        gaps = find_gaps(fresh, stored, {})
        if not gaps:
            return {}
        starts = self._until_done(
            lambda: self.log_starts(set(gaps)), what="Kafka", retry_on=(KafkaError, OSError)
        )
        if real := find_gaps(fresh, stored, starts):
            raise PositionGap(real)
        for (topic, partition), (at, first) in sorted(gaps.items()):
            log.error(
                "%s/%d: records %d..%d were deleted from the log before they were projected",
                topic,
                partition,
                at,
                first - 1,
            )
        return starts

    # -- 2. open sealed fields, decode ---------------------------------------------------
    def _opened(
        self, records: Sequence[LogRecord]
    ) -> Sequence[bytes | ErasedRecord | RapportError]:
        unsealer = self.unsealer
        if unsealer is None:
            return [r.value or b"" for r in records]
        return self._until_done(lambda: unsealer.open_all([r.value for r in records]))

    def _positioned(
        self, record: LogRecord, decoded: Decoded, outcome: BatchOutcome
    ) -> PositionedEvent:
        """The record as the store takes it; one that could not be opened or decoded is
        parked, naming the stage, and goes on without an event (its position is stored)."""
        if isinstance(decoded, ErasedRecord):
            return PositionedEvent(record.topic, record.partition, record.offset, None, decoded)
        if isinstance(decoded, Unreadable):
            error = decoded.error
            self._park(record, error, type(error).__name__, decoded.stage, outcome)
            return PositionedEvent(record.topic, record.partition, record.offset, None)
        return PositionedEvent(record.topic, record.partition, record.offset, decoded)

    # -- 3. store, isolating the records that cannot be stored ---------------------------
    def _store(
        self,
        batch: list[PositionedEvent],
        records: Mapping[tuple[str, int, int], LogRecord],
        log_starts: Mapping[PartitionKey, int],
        outcome: BatchOutcome,
    ) -> None:
        while True:
            try:
                began = time.perf_counter()
                outcome.add(self.batches.apply_batch(batch, log_starts=log_starts))
                outcome.transaction_seconds.append(time.perf_counter() - began)
                return
            except (PositionGap, PipelineStopped):
                raise
            except Exception as exc:
                fault = classify(exc)
                if fault.kind is Kind.RETRY:
                    self._wait("PostgreSQL", fault.reason)
                    continue
                culprit = self._culprit(batch, exc)
                if culprit is None and len(batch) > 1:
                    middle = len(batch) // 2  # each half keeps its partitions' order
                    self._store(batch[:middle], records, log_starts, outcome)
                    self._store(batch[middle:], records, log_starts, outcome)
                    return
                i = culprit or 0
                r = batch[i]
                self._park(
                    records[(r.topic, r.partition, r.offset)],
                    fault.reason,
                    fault.error_type,
                    fault.stage,
                    outcome,
                )
                parked = PositionedEvent(r.topic, r.partition, r.offset, None)
                batch = [*batch[:i], parked, *batch[i + 1 :]]

    @staticmethod
    def _culprit(batch: Sequence[PositionedEvent], error: BaseException) -> int | None:
        """The index of the record the projection code named, if it named one."""
        if not isinstance(error, RecordRefused):
            return None
        for i, r in enumerate(batch):
            if (r.topic, r.partition, r.offset) == error.position:
                return i
        return None

    # -- 4. park, holding the batch while the dead-letter topic refuses ------------------
    def _park(
        self,
        record: LogRecord,
        error: BaseException | str,
        error_type: str,
        stage: str,
        outcome: BatchOutcome,
    ) -> None:
        def park() -> bool:
            return self.dead_letters.park(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                headers=record.headers,
                error=error,
                error_type=error_type,
                stage=stage,
            )

        if self._until_done(park, what="the dead-letter topic", retry_on=(DeadLetterFailed,)):
            outcome.parked += 1
            outcome.parked_by_reason[(stage, error_type)] += 1
        else:
            outcome.parked_before += 1

    # -- waiting -------------------------------------------------------------------------
    def _until_done(
        self,
        action: Callable[[], T],
        *,
        what: str = "PostgreSQL",
        retry_on: tuple[type[BaseException], ...] | None = None,
    ) -> T:
        """`action()`, retried while it fails with an error worth waiting out."""
        while True:
            try:
                return action()
            except PipelineStopped:
                raise
            except Exception as exc:
                if retry_on is not None:
                    if not isinstance(exc, retry_on):
                        raise
                    self._wait(what, describe(exc))
                    continue
                fault = classify(exc)
                if fault.kind is not Kind.RETRY:
                    raise
                self._wait(what, fault.reason)

    def _wait(self, what: str, reason: str) -> None:
        """Sleep before the next attempt (backing off), or give up, or stop."""
        waited = self.health.waiting_seconds()
        if self.retry.give_up_after_s is not None and waited > self.retry.give_up_after_s:
            raise GaveUp(f"gave up after {waited:.0f}s waiting for {what}: {reason}")
        attempts = self.health.waiting_attempts()
        delay = min(self.retry.max_delay_s, self.retry.first_delay_s * 2 ** min(attempts, 10))
        self.health.waiting(what, reason, delay)
        if self.stop.wait(delay):
            raise PipelineStopped(f"stopped while waiting for {what}: {reason}")


__all__ = [
    "BatchOutcome",
    "BatchPipeline",
    "BatchStore",
    "DeadLetters",
    "Fault",
    "GaveUp",
    "LogRecord",
    "PipelineStopped",
    "Prepared",
    "RetryPolicy",
]
