"""Scale-out on Kafka's consumer group: `rapport worker --processes N`, and members joining
and leaving while events flow, with every event accounted for exactly once."""

from __future__ import annotations

import itertools
import re
import signal
import uuid
from pathlib import Path

import pytest

from infra.settings import Settings
from producers.simulator import simulate
from tests.integration.accounting import (
    assert_accounted,
    publish_sealed,
    stored_total,
    wait_drained,
)
from tests.support import running_worker, wait_for

pytestmark = pytest.mark.integration


def _publish(settings: Settings, count: int, seed: int) -> set[uuid.UUID]:
    return publish_sealed(
        settings, itertools.islice(simulate(customers=count // 10, seed=seed), count)
    )


_progress = stored_total


def _members_that_projected(log: str) -> set[str]:
    """The pids (faust prints one per log line) of the members that stored a batch."""
    return set(re.findall(r"\[(\d+)\] \[INFO\] projected [1-9]\d* new events", log))


def _members_assigned(log: Path) -> set[str]:
    """The pids of the members whose latest assignment holds partitions."""
    text = log.read_text() if log.exists() else ""
    latest = dict(re.findall(r"\[(\d+)\] \[INFO\] assigned partitions: (\S+)", text))
    return {pid for pid, names in latest.items() if names != "(none)"}


def test_a_worker_group_shares_the_partitions(rapport_settings: Settings) -> None:
    settings = rapport_settings  # 3 partitions
    log = settings.state_dir / "group.log"
    with running_worker(
        settings, "--loglevel", "info", "--batch-size", "200", log=log, processes=2
    ):
        wait_for(lambda: len(_members_assigned(log)) == 2, what="both members hold partitions")
        published = _publish(settings, 6_000, seed=21)
        wait_drained(settings)
    text = log.read_text()
    assert "worker group: 2 processes" in text
    assert len(_members_that_projected(text)) == 2, "one member did all the work"
    assert_accounted(settings, published)


@pytest.mark.timeout(600)
def test_members_joining_and_leaving_under_load_lose_and_double_nothing(
    rapport_settings: Settings,
) -> None:
    """A group of two drains while a third worker joins (a rebalance), is SIGKILLed (its
    partitions wait out the session timeout, then move), and a member group is stopped
    and started again: each rebalance moves partitions with batches in flight."""
    s = rapport_settings
    published = _publish(s, 40_000, seed=22)
    with running_worker(s, "--batch-size", "200", processes=2) as group:
        wait_for(lambda: _progress(s) >= 4_000, timeout=120, what="the group under load")
        with running_worker(s, "--batch-size", "200") as third:
            joined = _progress(s)
            wait_for(lambda: _progress(s) >= joined + 4_000, timeout=120, what="three members")
            third.send_signal(signal.SIGKILL)
            third.wait()
        left = _progress(s)
        with running_worker(s, "--batch-size", "500", processes=2) as second:
            wait_for(lambda: _progress(s) >= left + 4_000, timeout=120, what="four members")
            assert second.poll() is None, "the second group exited"
        assert _progress(s) < len(published), "drained before the last rebalance: publish more"
        wait_drained(s, timeout=300)
        assert group.poll() is None, "the first group exited through the rebalances"
    assert_accounted(s, published)
