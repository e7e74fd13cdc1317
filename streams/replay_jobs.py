"""Replay with several processes, each owning a share of the topic's partitions.

One replaying process is bound by its GIL: decoding and folding keep one core busy while
PostgreSQL mostly waits. The topic is keyed by customer, so processes that split the
partitions write disjoint profiles and positions; what they share (an event_id sent
under two keys, the daily channel counters) is guarded by the same row locks and
ON CONFLICT rules that let two live workers share a consumer group.

Each process resumes from the version's positions like a single replayer, so an
interrupted parallel replay resumes too, with any number of jobs.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from projections.store import ProjectionStore
from streams.pipeline import RetryPolicy, Unsealer
from streams.replay import Progress, ReplayError, ReplayStats

# A child that sends nothing for this long while alive is still working (a 20k-record
# batch takes a few seconds); the parent only polls so it notices a child that died.
_POLL_S = 0.5


@dataclass(frozen=True)
class ReplayTarget:
    """Where every child reads from and writes to (picklable: children are spawned)."""

    open_store: Callable[[], ProjectionStore]
    bootstrap: str
    topic: str
    dlq_topic: str | None
    batch_size: int
    retry: RetryPolicy
    unsealers: Callable[[], Unsealer] | None = None


@dataclass(frozen=True)
class Share:
    """What one child replays: its partitions, up to (excluding) the given offsets."""

    partitions: tuple[int, ...]
    until: dict[int, int]


def split(work: dict[int, int], jobs: int) -> list[tuple[int, ...]]:
    """Partitions dealt to at most `jobs` shares, balanced by records left (`work`)."""
    shares: list[list[int]] = [[] for _ in range(max(1, min(jobs, len(work))))]
    load = [0] * len(shares)
    for partition in sorted(work, key=lambda p: (-work[p], p)):
        lightest = load.index(min(load))
        shares[lightest].append(partition)
        load[lightest] += work[partition]
    return [tuple(sorted(s)) for s in shares if s]


def run_shares(
    target: ReplayTarget,
    shares: list[Share],
    *,
    total: int,
    progress: Progress | None = None,
) -> ReplayStats:
    """Run one process per share and wait for all; the first failure stops the others."""
    context = multiprocessing.get_context("spawn")  # no inherited sockets or pools
    messages: Any = context.Queue()
    children = [
        context.Process(
            target=_replay_share,
            args=(target, share, messages),
            name=f"replay-{'-'.join(map(str, share.partitions))}",
            daemon=True,
        )
        for share in shares
    ]
    stats = ReplayStats()
    finished: set[str] = set()
    began = time.monotonic()
    for child in children:
        child.start()
    try:
        while len(finished) < len(children):
            try:
                kind, name, value = messages.get(timeout=_POLL_S)
            except queue.Empty:
                _check_alive(children, finished)
                continue
            if kind == "progress":
                stats.records += value
                if progress:
                    progress(stats.records, total)
            elif kind == "done":
                finished.add(name)
                stats.projected += value["projected"]
                stats.parked += value["parked"]
            else:
                raise ReplayError(f"{name} failed: {value}")
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join()
    stats.seconds = time.monotonic() - began
    return stats


def _check_alive(children: list[Any], finished: set[str]) -> None:
    for child in children:
        if child.name not in finished and not child.is_alive() and child.exitcode != 0:
            raise ReplayError(f"{child.name} exited with code {child.exitcode}")


def _replay_share(target: ReplayTarget, share: Share, messages: Any) -> None:
    """A child: replay its partitions, reporting records done as they commit."""
    from streams.replay import Replayer

    name = multiprocessing.current_process().name
    store = target.open_store()
    reported = 0

    def report(done: int, _total: int) -> None:
        nonlocal reported
        messages.put(("progress", name, done - reported))
        reported = done

    try:
        replayer = Replayer(
            store,
            target.bootstrap,
            target.topic,
            dlq_topic=target.dlq_topic,
            batch_size=target.batch_size,
            partitions=share.partitions,
            retry=target.retry,
            unsealer=target.unsealers() if target.unsealers else None,
        )
        try:
            stats = replayer.run(share.until, report)
        finally:
            replayer.close()
        messages.put(("done", name, {"projected": stats.projected, "parked": stats.parked}))
    except Exception as exc:  # the parent turns it into a ReplayError naming this child
        messages.put(("error", name, f"{type(exc).__name__}: {exc}"))
    finally:
        store.close()
