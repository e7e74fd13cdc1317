"""The batch pipeline against the in-memory store: every record stored once or parked once.

The faults here are the ones the worker meets in production, played by fakes that
implement the real interfaces: a database that goes away and comes back, one that refuses
one row (SQLSTATE 22009), a fold that refuses an event, a dead-letter topic that refuses
writes for a while. The integration tier plays the same faults on the real services.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from projections.errors import PositionGap
from projections.memory import InMemoryStore
from projections.store import BatchResult, PositionedEvent
from schemas import CustomerRef, Envelope, encode_event
from schemas.payloads.email import EmailOpened
from streams.deadletter import DeadLetterFailed
from streams.health import Health
from streams.pipeline import (
    BatchPipeline,
    GaveUp,
    LogRecord,
    PipelineStopped,
    RetryPolicy,
)
from tests.workload import mixed_events

TOPIC = "touchpoints"
FAST = RetryPolicy(first_delay_s=0.0, max_delay_s=0.0)


class FakeDriverError(Exception):
    """What psycopg2 raises: an error with the server's SQLSTATE."""

    def __init__(self, message: str, pgcode: str) -> None:
        super().__init__(message)
        self.pgcode = pgcode


@dataclass
class FlakyStore:
    """The in-memory store behind a database that fails as told."""

    inner: InMemoryStore = field(default_factory=InMemoryStore)
    outages: int = 0  # the next this many calls fail with a lost connection
    refused_event_ids: set[Any] = field(default_factory=set)  # rows the database refuses
    calls: int = 0
    position_reads: int = 0

    def positions(self, keys: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        self.position_reads += 1
        self._maybe_down()
        return self.inner.positions(keys)

    def apply_batch(
        self,
        batch: Sequence[PositionedEvent],
        *,
        log_starts: Mapping[tuple[str, int], int] | None = None,
    ) -> BatchResult:
        self.calls += 1
        self._maybe_down()
        stored = self.inner.stored_positions
        for r in batch:
            fresh = r.offset >= stored.get((r.topic, r.partition), 0)
            if fresh and r.event is not None and r.event.event_id in self.refused_event_ids:
                orig = FakeDriverError("time zone displacement out of range", "22009")
                raise sa.exc.DataError("INSERT INTO timeline ...", None, orig)
        return self.inner.apply_batch(batch, log_starts=log_starts)

    def _maybe_down(self) -> None:
        if self.outages > 0:
            self.outages -= 1
            orig = FakeDriverError("server closed the connection unexpectedly", "")
            raise sa.exc.OperationalError("SELECT ...", None, orig)


@dataclass
class FakeDeadLetters:
    """The dead-letter topic: parks each source position once; can refuse for a while."""

    parked: dict[tuple[str, int, int], dict[str, Any]] = field(default_factory=dict)
    refusals: int = 0

    def park(self, *, topic: str, partition: int, offset: int, **letter: Any) -> bool:
        if self.refusals > 0:
            self.refusals -= 1
            raise DeadLetterFailed("the dead-letter topic is missing")
        if (topic, partition, offset) in self.parked:
            return False
        self.parked[(topic, partition, offset)] = letter
        return True


def _records(values: Sequence[bytes], partitions: int = 3) -> list[LogRecord]:
    """Values spread over partitions round-robin, offsets counting per partition."""
    next_offset = [0] * partitions
    records = []
    for i, value in enumerate(values):
        p = i % partitions
        records.append(LogRecord(TOPIC, p, next_offset[p], b"k", value))
        next_offset[p] += 1
    return records


def _pipeline(store: Any, dlq: FakeDeadLetters, **options: Any) -> BatchPipeline:
    return BatchPipeline(store, dlq, lambda keys: dict.fromkeys(keys, 0), retry=FAST, **options)


def _identity_flood(customer_id: str, events: int) -> list[bytes]:
    """Events that each give one customer 40 new identifiers."""
    at = mixed_events(1, 1, seed=9)[0].occurred_at
    return [
        encode_event(
            Envelope.new(
                EmailOpened(message_id=f"m-{k}"),
                customer=CustomerRef(
                    customer_id=customer_id,
                    external_ids={f"sys{n}": f"{k}-{n}" for n in range(20)},
                    social_handles={f"net{n}": f"{k}-{n}" for n in range(20)},
                ),
                occurred_at=at,
            )
        )
        for k in range(events)
    ]


def test_good_records_are_stored_and_bad_ones_parked_with_their_stage() -> None:
    good = [encode_event(e) for e in mixed_events(customers=5, per_customer=12, seed=1)]
    values = [*good[:20], b"\x00not json", *good[20:40], b'{"type": "nope"}', *good[40:]]
    store, dlq = FlakyStore(), FakeDeadLetters()
    outcome = _pipeline(store, dlq).run(_records(values))

    assert outcome.projected == len(good) == len(store.inner.timeline)
    assert outcome.parked == 2
    assert {letter["stage"] for letter in dlq.parked.values()} == {"decode"}
    assert sum(store.inner.stored_positions.values()) == len(values)


def test_a_row_the_database_refuses_is_isolated_and_the_rest_of_its_batch_stored() -> None:
    events = mixed_events(customers=20, per_customer=15, seed=2)  # 300 events, one batch
    poison = events[137]
    store = FlakyStore(refused_event_ids={poison.event_id})
    dlq = FakeDeadLetters()
    records = _records([encode_event(e) for e in events])
    outcome = _pipeline(store, dlq).run(records)

    assert outcome.projected == len(events) - 1
    assert poison.event_id not in store.inner.timeline
    (where, letter), *others = dlq.parked.items()
    assert not others
    assert letter["stage"] == "database"
    assert "SQLSTATE 22009" in letter["error"]
    assert (TOPIC, records[137].partition, records[137].offset) == where  # the poison one
    assert sum(store.inner.stored_positions.values()) == len(events)
    assert store.calls <= 2 + 2 * 9  # halving 300 records: at most two calls per level


def test_the_outcome_counts_stored_events_by_type_and_parked_ones_by_reason() -> None:
    """What the worker's metrics read: a parked event is not counted as projected."""
    events = mixed_events(customers=10, per_customer=10, seed=4)
    poison = events[42]
    store, dlq = FlakyStore(refused_event_ids={poison.event_id}), FakeDeadLetters()
    outcome = _pipeline(store, dlq).run(_records([*map(encode_event, events), b"{"]))

    expected = Counter(e.type for e in events)
    expected[poison.type] -= 1
    assert outcome.projected_by_type == +expected
    assert outcome.parked_by_reason == {
        ("database", "FakeDriverError"): 1,
        ("decode", "DecodeError"): 1,
    }
    assert outcome.newest_received == max(e.received_at for e in events if e is not poison)
    assert len(outcome.transaction_seconds) >= 2  # refused whole, then stored in parts


def test_events_a_fold_refuses_are_parked_by_name_without_splitting() -> None:
    events = mixed_events(customers=4, per_customer=10, seed=3)
    # 24 events bring the customer to 961 identifiers; each later one would pass 1,000.
    flood = _identity_flood("cust-flood", 30)
    values = [encode_event(e) for e in events] + flood
    store, dlq = FlakyStore(), FakeDeadLetters()
    outcome = _pipeline(store, dlq).run(_records(values))

    assert outcome.projected == len(events) + 24
    assert outcome.parked == 6
    assert {letter["stage"] for letter in dlq.parked.values()} == {"fold"}
    assert {letter["error_type"] for letter in dlq.parked.values()} == {"ProfileTooLarge"}
    assert all("more than 1,000 identifiers" in str(p["error"]) for p in dlq.parked.values())
    assert len(store.inner.profiles["cust-flood"].identifiers) == 961
    assert store.calls == 7  # the batch, then once more per refused event, never halved


def test_a_database_outage_is_waited_out_and_the_batch_stored_once() -> None:
    events = mixed_events(customers=5, per_customer=10, seed=4)
    store, dlq, health = FlakyStore(outages=7), FakeDeadLetters(), Health()
    records = _records([encode_event(e) for e in events])
    outcome = _pipeline(store, dlq, health=health).run(records)

    assert outcome.projected == len(events) and outcome.parked == 0
    assert health.retries == 7 and not health.is_waiting
    again = _pipeline(store, dlq).run(records)  # redelivered after a crash
    assert again.projected == 0 and again.redelivered == len(records)
    assert sum(p.events for p in store.inner.profiles.values()) == len(events)


def test_a_dead_letter_write_that_fails_holds_the_batch_until_it_succeeds() -> None:
    events = mixed_events(customers=3, per_customer=10, seed=5)
    values = [encode_event(e) for e in events]
    values.insert(4, b"garbage")
    store, health = FlakyStore(), Health()
    dlq = FakeDeadLetters(refusals=5)
    seen_waiting = []

    class Watching(Health):
        def waiting(self, what: str, reason: str, retry_in_s: float) -> None:
            seen_waiting.append((what, len(store.inner.timeline)))
            super().waiting(what, reason, retry_in_s)

    outcome = _pipeline(store, dlq, health=Watching()).run(_records(values))

    assert seen_waiting == [("the dead-letter topic", 0)] * 5  # nothing stored meanwhile
    assert outcome.parked == 1 and outcome.projected == len(events)
    assert not health.is_waiting


def test_a_batch_past_the_stored_position_raises_unless_the_log_lost_those_records() -> None:
    events = mixed_events(customers=2, per_customer=5, seed=6)
    records = [LogRecord(TOPIC, 0, 100 + n, b"k", encode_event(e)) for n, e in enumerate(events)]
    store, dlq = FlakyStore(), FakeDeadLetters()
    store.inner.stored_positions[(TOPIC, 0)] = 40

    with pytest.raises(PositionGap, match=r"touchpoints/0: stored 40, got 100"):
        _pipeline(store, dlq).run(records)
    assert not store.inner.timeline and not dlq.parked

    retention = BatchPipeline(store, dlq, lambda keys: dict.fromkeys(keys, 100), retry=FAST)
    assert retention.run(records).projected == len(events)
    assert store.inner.stored_positions[(TOPIC, 0)] == 100 + len(events)


def test_a_batch_going_on_from_the_last_one_stored_skips_reading_positions() -> None:
    records = _records([encode_event(e) for e in mixed_events(2, 10, seed=4)])
    store, dlq = FlakyStore(), FakeDeadLetters()
    pipeline = _pipeline(store, dlq)
    pipeline.run(records[:9])
    pipeline.run(records[9:15])
    assert store.position_reads == 1
    pipeline.run(records[12:])  # overlaps what was stored: the database decides
    assert store.position_reads == 2
    assert len(store.inner.timeline) == len(records)


def test_when_another_writer_moved_on_the_store_drops_what_it_already_has() -> None:
    records = _records([encode_event(e) for e in mixed_events(2, 10, seed=5)], partitions=1)
    store, dlq = FlakyStore(), FakeDeadLetters()
    ours, theirs = _pipeline(store, dlq), _pipeline(store, dlq)
    ours.run(records[:8])
    theirs.run(records[8:14])  # a rebalance: another worker took the partition meanwhile
    outcome = ours.run(records[8:14])  # goes on from our last batch, so asks nothing
    assert (outcome.projected, outcome.redelivered) == (0, 6)
    assert len(store.inner.timeline) == 14


def test_a_database_behind_the_last_batch_is_asked_before_anything_is_skipped() -> None:
    records = _records([encode_event(e) for e in mixed_events(2, 10, seed=6)], partitions=1)
    store, dlq = FlakyStore(), FakeDeadLetters()
    pipeline = _pipeline(store, dlq)
    pipeline.run(records[:10])
    store.inner = InMemoryStore()  # restored from a backup taken before any of it
    with pytest.raises(PositionGap, match=r"touchpoints/0: stored 0, got 10"):
        pipeline.run(records[10:])
    assert not store.inner.timeline and store.position_reads == 2

    # When the log no longer holds the records in between, the batch is stored.
    gone = BatchPipeline(store, dlq, lambda keys: dict.fromkeys(keys, 10), retry=FAST)
    gone._stored_next = {(TOPIC, 0): 10}  # as if it had stored the first ten itself
    assert gone.run(records[10:]).projected == 10


def test_a_stopped_pipeline_gives_up_waiting_without_storing() -> None:
    stop = threading.Event()
    stop.set()
    store = FlakyStore(outages=1)
    records = _records([encode_event(e) for e in mixed_events(1, 3, seed=7)])
    pipeline = BatchPipeline(
        store, FakeDeadLetters(), lambda keys: {}, retry=RetryPolicy(first_delay_s=5), stop=stop
    )
    with pytest.raises(PipelineStopped, match="PostgreSQL"):
        pipeline.run(records)
    assert not store.inner.timeline


def test_a_replay_gives_up_after_its_retry_window_naming_the_cause() -> None:
    store = FlakyStore(outages=10**6)
    records = _records([encode_event(e) for e in mixed_events(1, 3, seed=8)])
    policy = RetryPolicy(first_delay_s=0.01, max_delay_s=0.01, give_up_after_s=0.05)
    pipeline = BatchPipeline(store, FakeDeadLetters(), lambda keys: {}, retry=policy)
    with pytest.raises(GaveUp, match=r"waiting for PostgreSQL: .*server closed the connection"):
        pipeline.run(records)


@st.composite
def _log_with_poison(draw: st.DrawFn) -> tuple[list[LogRecord], set[int], list[int]]:
    """A log of valid events with some records the database refuses and some garbage, and
    a way of cutting it into batches (with redelivered overlaps)."""
    events = mixed_events(customers=6, per_customer=8, seed=draw(st.integers(0, 50)))
    values = [encode_event(e) for e in events]
    garbage = draw(st.sets(st.integers(0, len(values)), max_size=3))
    for at in sorted(garbage, reverse=True):
        values.insert(at, b"not an event")
    records = _records(values, partitions=draw(st.integers(1, 4)))
    refused = draw(st.sets(st.sampled_from(range(len(records))), max_size=4))
    cuts = draw(st.lists(st.integers(1, 25), min_size=1, max_size=8))
    return records, refused, cuts


@settings(max_examples=40, deadline=None)
@given(_log_with_poison())
def test_any_batching_with_redelivery_stores_each_event_once_or_parks_it(
    case: tuple[list[LogRecord], set[int], list[int]],
) -> None:
    records, refused_at, cuts = case
    refused_ids = set()
    for i in refused_at:
        value = records[i].value or b""
        if value.startswith(b"{"):
            refused_ids.add(uuid.UUID(value.split(b'"event_id":"')[1][:36].decode()))
    store, dlq = FlakyStore(refused_event_ids=refused_ids), FakeDeadLetters()
    pipeline = _pipeline(store, dlq)
    # Batches as the consumer might deliver them, each redelivering part of the last.
    start, n = 0, 0
    while start < len(records):
        size = cuts[n % len(cuts)]
        pipeline.run(records[max(0, start - size // 2) : start + size])
        start += size
        n += 1

    # The same log in one batch, on a clean store: the reference.
    clean, clean_dlq = FlakyStore(refused_event_ids=refused_ids), FakeDeadLetters()
    _pipeline(clean, clean_dlq).run(records)

    assert store.inner.timeline == clean.inner.timeline
    assert store.inner.profiles == clean.inner.profiles
    assert store.inner.channel_daily == clean.inner.channel_daily
    assert dlq.parked.keys() == clean_dlq.parked.keys()
    projected = {e.event_id for e in store.inner.timeline.values()}
    assert not projected & refused_ids
    assert len(projected) + len(dlq.parked) == len(records)
