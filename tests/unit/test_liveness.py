"""The watchdog's verdict and the gap check: the two rules that decide a worker restart."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from projections.store import PositionedEvent, find_gaps
from streams.watchdog import Watchdog

P0, P1 = ("t", 0), ("t", 1)


def test_a_partition_with_lag_that_does_not_move_is_stalled_after_the_timeout() -> None:
    dog = Watchdog(stall_timeout_s=60)
    assert dog.observe(0, {P0: 10}, {P0: 50}, {P0}) == []
    assert dog.observe(59, {P0: 10}, {P0: 80}, {P0}) == []  # new records, same position
    [stall] = dog.observe(61, {P0: 10}, {P0: 90}, {P0})
    assert (stall.partition, stall.position, stall.head, stall.seconds) == (P0, 10, 90, 61)


def test_progress_no_lag_or_an_excused_wait_restart_the_clock() -> None:
    dog = Watchdog(stall_timeout_s=60)
    dog.observe(0, {P0: 10, P1: 5}, {P0: 50, P1: 5}, {P0, P1})
    dog.observe(50, {P0: 11, P1: 5}, {P0: 50, P1: 9}, {P0, P1})  # P0 moved; P1 lags now
    assert dog.observe(100, {P0: 11, P1: 5}, {P0: 50, P1: 9}, {P0, P1}) == []
    assert [s.partition for s in dog.observe(111, {P0: 11, P1: 5}, {P0: 50, P1: 9}, {P0, P1})] == [
        P0,
        P1,
    ]
    dog.excuse()  # the worker said why it waits (PostgreSQL down, dead-letter topic refusing)
    assert dog.observe(112, {P0: 11, P1: 5}, {P0: 50, P1: 9}, {P0, P1}) == []
    dog.observe(200, {P0: 50, P1: 9}, {P0: 50, P1: 9}, {P0, P1})  # drained
    assert dog.observe(400, {P0: 50, P1: 9}, {P0: 50, P1: 9}, {P0, P1}) == []


def test_only_the_watched_partitions_count() -> None:
    dog = Watchdog(stall_timeout_s=10)
    dog.observe(0, {P0: 0, P1: 0}, {P0: 5, P1: 5}, {P0})
    assert [s.partition for s in dog.observe(20, {P1: 0}, {P0: 5, P1: 5}, {P0})] == [P0]
    assert dog.observe(30, {}, {P0: 5, P1: 5}, {P1}) == []  # P1 just started being watched


def _records(offsets: list[int], partition: int = 0) -> list[PositionedEvent]:
    return [PositionedEvent("t", partition, o, None) for o in offsets]


def test_gaps_are_found_where_a_batch_jumps_past_the_stored_position() -> None:
    assert find_gaps(_records([5, 6, 7]), {P0: 5}, {}) == {}
    assert find_gaps(_records([3, 4, 5, 6]), {P0: 5}, {}) == {}  # redelivered head
    assert find_gaps(_records([7, 8]), {P0: 5}, {}) == {P0: (5, 7)}
    assert find_gaps(_records([5, 6, 9]), {P0: 5}, {}) == {P0: (5, 9)}  # a hole inside
    assert find_gaps(_records([0, 1]), {}, {}) == {}  # nothing stored: from the start
    assert find_gaps(_records([40, 41]), {}, {}) == {P0: (0, 40)}
    assert find_gaps(_records([40, 41]), {}, {P0: 40}) == {}  # retention deleted 0..39
    assert find_gaps(_records([40, 41]), {P0: 12}, {P0: 40}) == {}


@given(st.integers(0, 100), st.integers(1, 50), st.integers(0, 60))
def test_a_contiguous_continuation_never_has_a_gap(stored: int, size: int, back: int) -> None:
    start = max(0, stored - back)  # some redelivered, then exactly what follows
    assert find_gaps(_records(list(range(start, stored + size))), {P0: stored}, {}) == {}
    assert find_gaps(_records(list(range(stored + 1, stored + size + 1))), {P0: stored}, {}) == {
        P0: (stored, stored + 1)
    }
