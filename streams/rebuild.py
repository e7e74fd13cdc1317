"""Build, verify and swap in projection versions while the live one keeps serving.

build    replay offset 0 .. head into a new version's schema (bulk batches, indexes
         built after the load), refresh its scores;
verify   rebuild into a new version up to exactly the live version's positions, compare
         the two by checksums per table and per customer, report every difference;
swap     catch the new version up to the live head, then, in one transaction that
         holds off the live worker's batches, check it has everything the live version
         has and flip the analyst views to it. The worker's next batch goes to it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from projections import views
from projections.score_refresh import refresh_scores
from projections.scores import DEFAULT_PARAMETERS, ScoreParameters
from projections.store import ProjectionStore, create_indexes, create_schema
from projections.tables import build_tables
from projections.verify import Difference, checksums, compare, scores_as_of
from streams.pipeline import REPLAY_RETRY, RetryPolicy
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
        engine: sa.Engine,
        bootstrap: str,
        topic: str,
        *,
        dlq_topic: str | None = None,  # None: TOPIC.dlq
        batch_size: int = 20_000,
        params: ScoreParameters = DEFAULT_PARAMETERS,
        jobs: int | None = None,  # replay processes; None: one per core
        retry: RetryPolicy = REPLAY_RETRY,
    ) -> None:
        self.engine = engine
        self.jobs = jobs or os.cpu_count() or 1
        self.bootstrap = bootstrap
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.retry = retry
        self.batch_size = batch_size
        self.params = params

    # -- registry -------------------------------------------------------------------------
    def versions(self) -> list[dict[str, object]]:
        with self.engine.begin() as conn:
            views.ensure_registry(conn)
            rows = (
                conn.execute(
                    sa.text(
                        f"SELECT schema_name, status, active, created_at, activated_at "
                        f"FROM {views.VERSIONS_TABLE} ORDER BY created_at"
                    )
                )
                .mappings()
                .all()
            )
            out = []
            for row in rows:
                positions = build_tables(row["schema_name"]).positions
                try:
                    done = conn.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(positions.c.next_offset), 0))
                    ).scalar_one()
                except sa.exc.ProgrammingError:
                    done = None
                out.append(
                    {
                        **{str(k): v for k, v in row.items()},
                        "version": views.version_of(row["schema_name"]),
                        "records": done,
                    }
                )
            return out

    def next_version(self) -> int:
        numbers = [v["version"] for v in self.versions() if isinstance(v["version"], int)]
        return max(numbers, default=0) + 1

    def drop(self, version: int) -> None:
        schema = views.schema_for(version)
        with self.engine.begin() as conn:
            views.ensure_registry(conn)
            if views.active_schema(conn, lock="update") == schema:
                raise ReplayError(f"version {version} is active; activate another one first")
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(
                sa.text(f"DELETE FROM {views.VERSIONS_TABLE} WHERE schema_name = :s"), {"s": schema}
            )

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
        schema = views.schema_for(version)
        with self.engine.connect() as conn:
            views.ensure_registry(conn)
            if views.active_schema(conn) == schema:
                raise ReplayError(f"version {version} is the live version; replay a new one")
            conn.commit()
        create_schema(self.engine, schema, with_indexes=False)
        stats = self._replay(schema, until, progress)
        create_indexes(self.engine, schema)
        if scores_as_of is not None:
            refresh_scores(self.engine, schema, as_of=scores_as_of, params=self.params)
        with self.engine.begin() as conn:
            views.set_status(conn, schema, "ready")
        return stats

    def _replay(
        self, schema: str, until: dict[int, int] | None, progress: Progress | None
    ) -> ReplayStats:
        """Replay into `schema` up to `until` (default: the head now), with up to `jobs`
        processes when more than one partition has records left."""
        replayer = self._replayer(schema)
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
            self.engine.url.render_as_string(hide_password=False),
            schema,
            self.bootstrap,
            self.topic,
            self.dlq_topic,
            self.batch_size,
            self.retry,
        )
        return run_shares(
            target,
            [Share(partitions, {p: until.get(p, 0) for p in partitions}) for partitions in shares],
            total=sum(work.values()),
            progress=progress,
        )

    def _replayer(self, schema: str) -> Replayer:
        store = ProjectionStore(self.engine, schema)
        return Replayer(
            store,
            self.bootstrap,
            self.topic,
            dlq_topic=self.dlq_topic,
            batch_size=self.batch_size,
            retry=self.retry,
        )

    # -- swap -----------------------------------------------------------------------------
    def swap(self, version: int, progress: Progress | None = None) -> str | None:
        """Catch `version` up with the head and make it active; return the old version's
        schema. The views flip in one transaction: readers see the old or the new."""
        schema = views.schema_for(version)
        replayer = self._replayer(schema)
        try:
            for _ in range(MAX_CATCH_UP_ROUNDS):
                replayer.run(progress=progress)
                with self.engine.begin() as conn:
                    live = views.active_schema(conn, lock="update")  # waits for live batches
                    if live == schema:
                        return None
                    if live is None or self._has_everything(conn, schema, live):
                        views.activate(conn, schema)
                        return live
        finally:
            replayer.close()
        raise ReplayError(
            f"version {version} could not catch up with the live worker in "
            f"{MAX_CATCH_UP_ROUNDS} rounds; is the broker or the database overloaded?"
        )

    def _has_everything(self, conn: sa.Connection, schema: str, live: str) -> bool:
        mine, theirs = self._positions(conn, schema), self._positions(conn, live)
        return all(mine.get(key, 0) >= offset for key, offset in theirs.items())

    def _positions(self, conn: sa.Connection, schema: str) -> dict[tuple[str, int], int]:
        p = build_tables(schema).positions
        rows = conn.execute(
            sa.select(p.c.topic, p.c.partition, p.c.next_offset).where(p.c.topic == self.topic)
        )
        return {(r.topic, r.partition): r.next_offset for r in rows}

    # -- verify ---------------------------------------------------------------------------
    def verify(self, version: int, progress: Progress | None = None) -> VerifyReport:
        """Rebuild into `version` up to the live version's positions and compare."""
        with self.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            live = views.active_schema(conn)
            if live is None:
                raise ReplayError("there is no live version to verify against")
            # One snapshot: the positions and the checksums describe the same moment.
            until = {p: o for (_, p), o in self._positions(conn, live).items()}
            live_sums = checksums(conn, live)
            live_scores = scores_as_of(conn, build_tables(live))
            conn.rollback()
        schema = views.schema_for(version)
        stats = self.build(version, until=until, progress=progress, scores_as_of=live_scores)
        with self.engine.connect() as conn:
            rebuilt = checksums(conn, schema)
            differences = compare(conn, live_sums, rebuilt, live, schema)
        with self.engine.begin() as conn:
            views.set_status(conn, schema, "verified" if not differences else "differs")
        return VerifyReport(live, schema, rebuilt.rows, differences, stats)
