"""The hand-over from the fetch loop to the batches: order, bounds, and seeks."""

from __future__ import annotations

import asyncio

import pytest

from streams.fetched import Fetched
from streams.pipeline import LogRecord


def _records(partition: int, offsets: range) -> list[LogRecord]:
    return [LogRecord("t", partition, o, None, b"{}") for o in offsets]


def _offsets(batch: list[LogRecord]) -> list[tuple[int, int]]:
    return [(r.partition, r.offset) for r in batch]


def test_batches_are_cut_across_and_within_fetches_in_order() -> None:
    async def scenario() -> list[list[tuple[int, int]]]:
        fetched = Fetched(limit=100)
        await fetched.put(_records(0, range(0, 3)))
        await fetched.put(_records(1, range(0, 4)))
        return [_offsets(await fetched.take(5)), _offsets(await fetched.take(5))]

    first, second = asyncio.run(scenario())
    assert first == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
    assert second == [(1, 2), (1, 3)]


def test_a_fetch_waits_while_the_limit_is_reached() -> None:
    async def scenario() -> tuple[bool, bool]:
        fetched = Fetched(limit=3)
        await fetched.put(_records(0, range(0, 3)))  # at the limit now
        second = asyncio.ensure_future(fetched.put(_records(0, range(3, 5))))
        await asyncio.sleep(0.01)
        held = not second.done()
        await fetched.take(2)
        await asyncio.wait_for(second, 1)
        return held, len(fetched) == 3

    held, then = asyncio.run(scenario())
    assert held, "a fetch was queued beyond the limit"
    assert then


def test_a_seek_drops_the_waiting_records_of_its_partitions_only() -> None:
    async def scenario() -> list[tuple[int, int]]:
        fetched = Fetched(limit=10)
        await fetched.put([*_records(0, range(2, 4)), *_records(1, range(0, 2))])
        await fetched.drop({("t", 0)})  # partition 0 sought back to where it was stored
        await fetched.put(_records(0, range(0, 2)))  # fetched after the seek
        return _offsets(await fetched.take(10))

    assert asyncio.run(scenario()) == [(1, 0), (1, 1), (0, 0), (0, 1)]


def test_the_commit_carries_the_next_offset_of_what_was_stored() -> None:
    fetched = Fetched(limit=10)
    fetched.done([*_records(0, range(5, 9)), *_records(2, range(0, 1))])
    assert fetched.next_offsets() == {("t", 0): 9, ("t", 2): 1}
    assert fetched.next_offsets() == {}, "each stored offset is committed once"


@pytest.mark.parametrize("limit", [1, 5])
def test_one_fetch_larger_than_the_limit_still_goes_in(limit: int) -> None:
    async def scenario() -> int:
        fetched = Fetched(limit=limit)
        await asyncio.wait_for(fetched.put(_records(0, range(0, 20))), 1)
        return len(fetched)

    assert asyncio.run(scenario()) == 20
