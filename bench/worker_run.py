"""The real `rapport worker` in a child process, watched from outside: how far it has
projected (the positions it commits in the same transaction as each batch's rows), its
resident memory and its lag. Polling a handful of position rows every 50 ms costs the
database next to nothing."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import sqlalchemy as sa

from infra import worker_process
from infra.settings import Settings
from projections.postgres import views
from schemas.errors import RapportError

POLL_S = 0.05
STOP_TIMEOUT_S = 60.0
PROFILED_STOP_TIMEOUT_S = 600.0  # rendering the profile of a long run takes a while


class BenchError(RapportError):
    """The benchmark could not measure something; the message says what and why."""


class WorkerProcess(worker_process.WorkerProcess):
    """`rapport worker` (or, with `profile`, bench.profiled_worker), with its memory."""

    def __init__(
        self, settings: Settings, log: Path, profile: Path | None = None, processes: int = 1
    ) -> None:
        super().__init__(
            settings,
            log,
            "--processes",
            str(processes),
            command=[sys.executable, "-m", "bench.profiled_worker", str(profile)]
            if profile
            else None,
            stop_timeout_s=PROFILED_STOP_TIMEOUT_S if profile else STOP_TIMEOUT_S,
        )

    def exited_error(self, code: int) -> Exception:
        return BenchError(str(super().exited_error(code)))

    def rss(self) -> tuple[int, int]:
        """Resident memory in bytes of the worker and every process it started (a group's
        members, the scorer), and of the largest of those processes."""
        try:
            parent = psutil.Process(self.process.pid)
            each = [p.memory_info().rss for p in [parent, *parent.children(recursive=True)]]
            return sum(each), max(each)
        except psutil.Error:
            return 0, 0


class ProjectedCount:
    """How many records of `topic` the active projection version has done (0 before the
    worker has created its tables)."""

    def __init__(self, database_url: str, topic: str) -> None:
        self.engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT", pool_size=1)
        self.topic = topic
        self._sql: sa.TextClause | None = None

    def __call__(self) -> int:
        with self.engine.connect() as conn:
            if self._sql is None:
                try:
                    schema = views.active_schema(conn)
                except sa.exc.ProgrammingError:
                    return 0
                if schema is None:
                    return 0
                self._sql = sa.text(
                    f'SELECT coalesce(sum(next_offset), 0) FROM "{schema}".positions '
                    "WHERE topic = :topic"
                )
            try:
                return int(conn.execute(self._sql, {"topic": self.topic}).scalar_one())
            except sa.exc.ProgrammingError:
                return 0

    def close(self) -> None:
        self.engine.dispose()


@dataclass
class Drain:
    """One worker run from start to `records` projected."""

    records: int
    startup_s: float = 0.0  # process start -> first batch committed
    first_batch: int = 0  # records already projected when first seen
    drain_s: float = 0.0  # first batch committed -> all projected
    peak_rss: int = 0  # every process of the worker together
    peak_process_rss: int = 0  # the largest single process
    lag: list[tuple[float, int]] = field(default_factory=list)  # (s since start, unprojected)

    @property
    def rate(self) -> float:
        """events/s from the first committed batch to the last; the whole run (start-up
        included) only when everything landed before the first poll saw anything."""
        if self.drain_s > 0 and self.first_batch < self.records:
            return (self.records - self.first_batch) / self.drain_s
        return self.records / max(self.startup_s + self.drain_s, 1e-9)

    @property
    def wall_rate(self) -> float:
        return self.records / max(self.startup_s + self.drain_s, 1e-9)


def watch_drain(
    worker: WorkerProcess,
    projected: ProjectedCount,
    records: int,
    *,
    timeout_s: float,
    on_first_batch: Callable[[], None] | None = None,
) -> Drain:
    """Poll until `records` are projected, sampling RSS and lag; `on_first_batch` is called
    once the worker has committed its first batch (the under-load queries start then)."""
    drain = Drain(records)
    first_seen: float | None = None
    deadline = worker.started + timeout_s
    while True:
        done = projected()
        now = time.monotonic()
        total, largest = worker.rss()
        drain.peak_rss = max(drain.peak_rss, total)
        drain.peak_process_rss = max(drain.peak_process_rss, largest)
        drain.lag.append((now - worker.started, records - done))
        if done and first_seen is None:
            first_seen = now
            drain.startup_s = now - worker.started
            drain.first_batch = done
            if on_first_batch is not None:
                on_first_batch()
        if done >= records:
            drain.drain_s = now - (first_seen or now)
            return drain
        worker.check_alive()
        if now > deadline:
            raise BenchError(
                f"worker projected {done:,} of {records:,} records in {timeout_s:.0f}s; "
                f"see {worker.log}"
            )
        time.sleep(POLL_S)


def drain_lag_summary(lag: list[tuple[float, int]], records: int) -> dict[str, object]:
    """How the lag behaved while a pre-filled topic was consumed: drained (and how close
    to a straight line, i.e. a steady rate) or stalled."""
    if not lag:
        return {"verdict": "no samples"}
    busy = [(t, n) for t, n in lag if n < records] or lag  # from the first committed batch
    (t0, start), (t1, end) = busy[0], busy[-1]
    deviation = 0.0
    if t1 > t0 and start > 0:
        for t, n in busy:
            line = start + (end - start) * (t - t0) / (t1 - t0)
            deviation = max(deviation, abs(n - line) / start)
    return {
        "verdict": "drained" if end <= 0.05 * records else "stalled",
        "start_records": records,
        "at_first_batch": start,
        "end": end,
        "max": max(n for _, n in lag),
        "max_deviation_from_steady_drain": round(deviation, 3),
        "trace": _downsample(lag),
    }


def live_lag_summary(lag: list[tuple[float, int]], publish_rate: float) -> dict[str, object]:
    """How the lag behaved while events were published at a steady rate: flat when its
    least-squares slope is under 5% of the publish rate, else it grew (or shrank)."""
    if len(lag) < 2:
        return {"verdict": "no samples"}
    ts = [t for t, _ in lag]
    ns = [n for _, n in lag]
    mean_t, mean_n = sum(ts) / len(ts), sum(ns) / len(ns)
    var = sum((t - mean_t) ** 2 for t in ts) or 1e-9
    slope = sum((t - mean_t) * (n - mean_n) for t, n in lag) / var
    verdict = "flat" if abs(slope) < 0.05 * publish_rate else ("grew" if slope > 0 else "shrank")
    return {
        "verdict": verdict,
        "slope_records_per_s": round(slope, 1),
        "median": sorted(ns)[len(ns) // 2],
        "max": max(ns),
        "trace": _downsample(lag),
    }


def _downsample(lag: list[tuple[float, int]], points: int = 40) -> list[list[float]]:
    step = max(1, len(lag) // points)
    kept = lag[::step] + ([lag[-1]] if (len(lag) - 1) % step else [])
    return [[round(t, 2), n] for t, n in kept]
