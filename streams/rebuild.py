"""Build, verify and swap in projection versions while the live one keeps serving.

build    replay offset 0 .. head into a new version (bulk batches, what a bulk load defers
         built after it), compute its scores;
verify   rebuild into a new version up to exactly the live version's positions, compare
         the two table by table and customer by customer, report every difference;
swap     catch the new version up to the live head, then, in one step that holds off the
         live worker's batches, check it has everything the live version has and make it
         active. The worker's next batch goes to it.

The store does the storing (`projections.store.ProjectionVersions`); this module only
decides the order of the steps and runs the replay.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from projections.scores import DEFAULT_PARAMETERS, ScoreParameters
from projections.store import Difference, ProjectionVersions, Version, version_name
from streams.pipeline import REPLAY_RETRY, RetryPolicy, Unsealer
from streams.replay import Progress, Replayer, ReplayError, ReplayStats
from streams.replay_jobs import ReplayTarget, Share, run_shares, split

MAX_CATCH_UP_ROUNDS = 50


@dataclass
class VerifyReport:
    live_schema: str
    rebuild_schema: str
    rows: dict[str, int]
    differences: list[Difference] = field(default_factory=list)
    stats: ReplayStats | None = None

    @property
    def identical(self) -> bool:
        return not self.differences


class Rebuilder:
    def __init__(
        self,
        versions: ProjectionVersions,
        bootstrap: str,
        topic: str,
        *,
        dlq_topic: str | None = None,  # None: TOPIC.dlq
        batch_size: int = 20_000,
        params: ScoreParameters = DEFAULT_PARAMETERS,
        jobs: int | None = None,  # replay processes; None: one per core
        retry: RetryPolicy = REPLAY_RETRY,
        unsealers: Callable[[], Unsealer] | None = None,  # picklable: replay processes open one
    ) -> None:
        self.store_versions = versions
        self.unsealers = unsealers
        self.jobs = jobs or os.cpu_count() or 1
        self.bootstrap = bootstrap
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.batch_size = batch_size
        self.params = params
        self.retry = retry

    # -- registry -------------------------------------------------------------------------
    def versions(self) -> list[Version]:
        return self.store_versions.versions()

    def next_version(self) -> int:
        numbers = [n for v in self.versions() if (n := v.number) is not None]
        return max(numbers, default=0) + 1

    def drop(self, version: int) -> None:
        self.store_versions.drop(version_name(version))

    # -- build ----------------------------------------------------------------------------
    def build(
        self,
        version: int,
        *,
        until: dict[int, int] | None = None,
        progress: Progress | None = None,
        scores_as_of: datetime | None = None,
    ) -> ReplayStats:
        """Replay into version `version` (resuming if it was interrupted)."""
        name = version_name(version)
        if any(v.active and v.name == name for v in self.versions()):
            raise ReplayError(f"version {version} is the live version; replay a new one")
        self.store_versions.prepare(name, bulk=True)
        stats = self._replay(name, until, progress)
        self.store_versions.finish(name, scores_as_of=scores_as_of, params=self.params)
        return stats

    def _replay(
        self, name: str, until: dict[int, int] | None, progress: Progress | None
    ) -> ReplayStats:
        """Replay into `name` up to `until` (default: the head now), with up to `jobs`
        processes when more than one partition has records left."""
        replayer = self._replayer(name)
        try:
            until = until if until is not None else replayer.head()
            start = replayer.done()
            work = {
                p: until.get(p, 0) - done for p, done in start.items() if until.get(p, 0) > done
            }
            shares = split(work, self.jobs)
            if len(shares) <= 1:
                return replayer.run(until, progress)
        finally:
            replayer.close()
        target = ReplayTarget(
            self.store_versions.store_factory(name),
            self.bootstrap,
            self.topic,
            self.dlq_topic,
            self.batch_size,
            self.retry,
            self.unsealers,
        )
        return run_shares(
            target,
            [Share(partitions, {p: until.get(p, 0) for p in partitions}) for partitions in shares],
            total=sum(work.values()),
            progress=progress,
        )

    def _replayer(self, name: str) -> Replayer:
        return Replayer(
            self.store_versions.store(name),
            self.bootstrap,
            self.topic,
            dlq_topic=self.dlq_topic,
            batch_size=self.batch_size,
            retry=self.retry,
            unsealer=self.unsealers() if self.unsealers else None,
        )

    # -- swap -----------------------------------------------------------------------------
    def swap(self, version: int, progress: Progress | None = None) -> str | None:
        """Catch `version` up with the head and make it active; return the old version's
        name. The views flip in one transaction: readers see the old or the new."""
        name = version_name(version)
        replayer = self._replayer(name)
        try:
            for _ in range(MAX_CATCH_UP_ROUNDS):
                replayer.run(progress=progress)
                activated, previous = self.store_versions.activate_if_complete(name, self.topic)
                if activated:
                    return previous
        finally:
            replayer.close()
        raise ReplayError(
            f"version {version} could not catch up with the live worker in "
            f"{MAX_CATCH_UP_ROUNDS} rounds; is the broker or the database overloaded?"
        )

    # -- verify ---------------------------------------------------------------------------
    def verify(self, version: int, progress: Progress | None = None) -> VerifyReport:
        """Rebuild into `version` up to the live version's positions and compare."""
        live = self.store_versions.freeze_live(self.topic)
        name = version_name(version)
        stats = self.build(
            version, until=live.positions, progress=progress, scores_as_of=live.scores_as_of
        )
        rows, differences = self.store_versions.differences(live, name)
        self.store_versions.set_status(name, "verified" if not differences else "differs")
        return VerifyReport(live.name, name, rows, differences, stats)
