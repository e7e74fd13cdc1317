"""Dealing partitions to replay processes: every partition once, the load balanced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.replay_jobs import split


def test_partitions_are_dealt_by_records_left() -> None:
    # 900 | 500, then 400 joins the lighter share, then 100 the lighter (first) one.
    assert split({0: 900, 1: 100, 2: 500, 3: 400}, 2) == [(0, 1), (2, 3)]


def test_no_more_shares_than_partitions_with_work() -> None:
    assert split({4: 10}, 8) == [(4,)]
    assert split({}, 4) == []


@given(
    st.dictionaries(st.integers(0, 63), st.integers(1, 10**6), max_size=40),
    st.integers(1, 16),
)
def test_every_partition_in_exactly_one_share(work: dict[int, int], jobs: int) -> None:
    shares = split(work, jobs)
    dealt = [p for share in shares for p in share]
    assert sorted(dealt) == sorted(work)
    assert len(shares) <= jobs
    # Greedy dealing: no share exceeds the fair part by more than the largest partition.
    if work:
        loads = [sum(work[p] for p in share) for share in shares]
        assert max(loads) <= sum(work.values()) / len(shares) + max(work.values())
