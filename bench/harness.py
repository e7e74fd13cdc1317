"""`rapport bench`: every path measured against its physical reference in one run.

Order (each figure repeated `repeats` times unless said otherwise):
  workload  simulate once, encode once (the bytes the SDK sends)
  A  bare send of the encoded records into a fresh topic; the first run's topic, which
     then holds exactly the workload, is what C, E and G read
  B  SDK publish of the Envelopes into fresh topics (dropped)
  C  drain-only consume of the workload topic
  G  replay of the workload topic into a fresh database (dropped)
  E  `rapport worker` on a fresh database and group; the first run's database is kept;
     each run is followed by E sealed (the same events sealed) and E 2 processes
     (`rapport worker --processes 2`), each on a fresh database (dropped)
  D  the rows E's first run wrote, dumped, then COPYed into fresh databases (dropped)
  H  the population of E's database scored at once (refresh-scores), then queries idle;
     then once more while an extra E
     run drains into another database: the profiled one, stopped after 200k records (E's
     figure and I do not use it)
  F  `rapport worker` resumes on E's database; the SDK publishes at half E's median rate
  P  top and segments over a population of `population` customers written into a fresh
     database, after the population scorer's ranking (timed too)
Everything the run creates on Kafka and PostgreSQL is removed at the end.
"""

from __future__ import annotations

import gc
import os
import platform
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psutil
import sqlalchemy as sa
from rich.console import Console

from bench import figures as fig
from bench.metrics_cost import metrics_cost
from bench.population_scale import population_at_scale
from bench.report import machine_line, ratios, table, targets
from bench.stats import spread
from bench.worker_run import (
    BenchError,
    Drain,
    ProjectedCount,
    WorkerProcess,
    drain_lag_summary,
    watch_drain,
)
from bench.workload import HEAVY_CUSTOMER, build_workload, fresh_events
from infra.bootstrap import sealer as bootstrap_sealer
from infra.kafka import KAFKA_VERSION
from infra.scratch import Scratch
from infra.settings import Settings

# The extra run that is profiled and loaded with queries stops after this many records: a
# profile and a few hundred query samples need less, and the profiler slows it down.
LOAD_RUN_RECORDS = 200_000


@dataclass(frozen=True)
class BenchOptions:
    events: int = 1_000_000
    customers: int = 100_000
    repeats: int = 3
    out: Path = Path("results.json")
    seed: int = 7
    freshness_s: float | None = None  # None: from 3 s (tiny runs) to 30 s (100k+ events)
    query_samples: int = 200  # per query and phase, unless its time budget runs out first
    query_budget_s: float = 20.0
    profile: bool = True
    population: int = 1_000_000  # figure P's customers; 0: no figure P

    @property
    def freshness_seconds(self) -> float:
        if self.freshness_s is not None:
            return self.freshness_s
        return min(30.0, max(3.0, self.events / 3_000))


class Steps:
    """Prints a run's steps with their durations, and drains worker runs into `logs`."""

    def __init__(self, console: Console, logs: Path) -> None:
        self.console = console
        self.logs = logs

    @contextmanager
    def step(self, label: str) -> Iterator[None]:
        self.console.print(f"[dim]{label}…[/dim]", highlight=False)
        began = time.monotonic()
        yield
        self.console.print(
            f"[dim]  done in {time.monotonic() - began:,.1f} s[/dim]", highlight=False
        )

    def note(self, text: str) -> None:
        self.console.print(f"  {text}", highlight=False)

    def drain(
        self, settings: Settings, records: int, timeout_s: float, label: str, processes: int = 1
    ) -> Drain:
        projected = ProjectedCount(settings.db_url, settings.topic)
        try:
            log = self.logs / f"worker-{label}.log"
            with WorkerProcess(settings, log, processes=processes) as worker:
                drain = watch_drain(worker, projected, records, timeout_s=timeout_s)
        finally:
            projected.close()
        self.note(
            f"{label}: {drain.rate:,.0f} events/s over {drain.drain_s:.1f} s "
            f"(start-up {drain.startup_s:.1f} s), peak RSS {drain.peak_rss / 2**20:,.0f} MiB"
            + (
                f" ({drain.peak_process_rss / 2**20:,.0f} MiB the largest process)"
                if processes > 1
                else ""
            )
        )
        return drain


class Harness(Steps):
    def __init__(self, base: Settings, options: BenchOptions, console: Console) -> None:
        super().__init__(console, options.out.parent / f"{options.out.stem}.logs")
        self.base = base
        self.options = options
        self.out = options.out
        self.profile_prefix = self.out.parent / f"{self.out.stem}.worker-profile"

    def run(self) -> dict[str, Any]:
        began = time.monotonic()
        o = self.options
        self.logs.mkdir(parents=True, exist_ok=True)
        results: dict[str, Any] = {
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "options": {**asdict(o), "out": str(o.out), "freshness_s": o.freshness_seconds},
            "machine": machine_facts(self.base),
        }
        with (
            tempfile.TemporaryDirectory(prefix="rapport-bench-") as tmp,
            closing(Scratch(self.base, Path(tmp) / "state")) as scratch,
        ):
            results["run_id"] = scratch.run_id
            results["figures"], extras = self._measure(scratch, Path(tmp), results)
        results["extras"] = extras
        results["ratios"] = ratios(results["figures"])
        results["targets"] = targets(results["figures"])
        results["machine"]["load_average_end"] = _load_average()
        results["duration_s"] = round(time.monotonic() - began, 1)
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2, default=str))
        self.console.print(table(results))
        self.console.print(machine_line(results["machine"]), highlight=False)
        for line in extras["notes"]:
            self.console.print(f"note: {line}", highlight=False)
        self.console.print(f"results: {self.out}", highlight=False)
        if "profile" in extras:
            self.console.print(f"worker profile: {extras['profile']['html']}", highlight=False)
        return results

    # -- the figures, in the order the module docstring gives --------------------------------
    def _measure(
        self, scratch: Scratch, tmp: Path, results: dict[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        o, bootstrap = self.options, self.base.bootstrap
        figures: dict[str, Any] = {}
        extras: dict[str, Any] = {"notes": []}

        with self.step(f"simulating {o.events:,} events over {o.customers:,} customers"):
            workload = build_workload(o.events, o.customers, seed=o.seed)
            # The workload is the benchmark's, not the code under test's: keep the garbage
            # collector from rescanning millions of its objects inside the timed loops.
            gc.collect()
            gc.freeze()
        results["workload"] = workload.describe()
        records = workload.count

        rates: list[float] = []
        workload_topic = ""
        with self.step("A: bare kafka-python send of the encoded records"):
            for n in range(o.repeats):
                topic = scratch.topic(f"a{n + 1}")
                rates.append(fig.bare_send(bootstrap, topic, workload.encoded))
                self.note(f"run {n + 1}: {rates[-1]:,.0f} events/s")
                if workload_topic:
                    scratch.drop_topic(topic)
                else:
                    workload_topic = topic  # holds exactly the workload: C, E, G read it
        figures["A"] = {**spread(rates), "unit": "events/s"}

        rates = []
        with self.step("B: SDK publish of the Envelopes"):
            for n in range(o.repeats):
                topic = scratch.topic(f"b{n + 1}")
                rates.append(fig.sdk_publish(bootstrap, topic, workload.events))
                self.note(f"run {n + 1}: {rates[-1]:,.0f} events/s")
                scratch.drop_topic(topic)
        figures["B"] = {**spread(rates), "unit": "events/s"}

        rates = []
        with self.step("B sealed: SDK publish sealing personal fields (run 1 creates the keys)"):
            url = scratch.database("bs")
            sealer = bootstrap_sealer(scratch.settings(scratch.topic("bs"), url, "bs"))
            for n in range(o.repeats):
                topic = scratch.topic(f"bs{n + 1}")
                rates.append(fig.sdk_publish(bootstrap, topic, workload.events, sealer))
                self.note(f"run {n + 1}: {rates[-1]:,.0f} events/s")
                scratch.drop_topic(topic)
            scratch.drop_database(url)
        figures["B_sealed"] = {**spread(rates), "unit": "events/s", "runs": rates}

        sealed: list[Settings] = []  # E sealed's topics and databases, drained after each E
        with self.step("E sealed: the workload sealed as producers send it, into fresh topics"):
            for n in range(o.repeats):
                settings = scratch.settings(
                    scratch.topic(f"es{n + 1}"), scratch.database(f"es{n + 1}"), f"es{n + 1}"
                )
                encoded = fig.sealed_records(
                    bootstrap_sealer(settings), workload.events, workload.encoded
                )
                fig.bare_send(bootstrap, settings.topic, encoded)
                boxes = sum(b'"sealed":{"key":' in item.value for item in encoded)
                self.note(f"es{n + 1}: {boxes:,} of {records:,} events carry a sealed box")
                del encoded
                sealed.append(settings)
        # Timed here, while the events are still held (E divides by its own time per event).
        cost = metrics_cost(workload.events)
        workload.release()
        gc.unfreeze()
        gc.collect()

        rates = []
        with self.step("C: drain-only consume from offset 0"):
            for n in range(o.repeats):
                count, rate = fig.drain_consume(bootstrap, workload_topic)
                if count != records:
                    raise BenchError(f"consumed {count:,} records, the topic has {records:,}")
                rates.append(rate)
                self.note(f"run {n + 1}: {rate:,.0f} events/s")
        figures["C"] = {**spread(rates), "unit": "events/s"}

        replays: list[fig.ReplayRun] = []
        with self.step("G: replay from offset 0 into a new version, indexes included"):
            for n in range(o.repeats):
                url = scratch.database(f"g{n + 1}")
                replays.append(fig.replay(url, bootstrap, workload_topic))
                scratch.drop_database(url)
                self.note(
                    f"run {n + 1}: {replays[-1].rate:,.0f} events/s "
                    f"(replay {replays[-1].replay_seconds:.1f} s of {replays[-1].seconds:.1f} s)"
                )
        figures["G"] = {
            **spread([r.rate for r in replays]),
            "unit": "events/s",
            "seconds": [r.seconds for r in replays],
            "replay_loop_seconds": [r.replay_seconds for r in replays],
            "jobs": replays[0].jobs,
        }

        drains: list[Drain] = []
        sealed_drains: list[Drain] = []
        group_drains: list[Drain] = []
        live: Settings | None = None
        timeout_s = 300 + records / 500
        with self.step(
            "E: live ingest by `rapport worker` from a pre-filled topic, "
            "alternating with E sealed (the same events, personal fields sealed) "
            "and E with 2 processes"
        ):
            for n in range(o.repeats):
                url = scratch.database(f"e{n + 1}")
                settings = scratch.settings(workload_topic, url, f"e{n + 1}")
                drains.append(self.drain(settings, records, timeout_s, f"e{n + 1}"))
                if live is None:
                    live = settings  # kept for D, H and F
                else:
                    scratch.drop_database(url)
                es = sealed[n]
                sealed_drains.append(self.drain(es, records, timeout_s, f"es{n + 1}"))
                scratch.drop_database(es.db_url)
                url = scratch.database(f"e2p{n + 1}")
                settings = scratch.settings(workload_topic, url, f"e2p{n + 1}")
                group_drains.append(self.drain(settings, records, timeout_s, f"e2p{n + 1}", 2))
                scratch.drop_database(url)
        assert live is not None
        figures["E"] = {
            **spread([d.rate for d in drains]),
            "unit": "events/s",
            "wall_rate": spread([d.wall_rate for d in drains]),
            "startup_s": spread([d.startup_s for d in drains]),
            "drain_s": [d.drain_s for d in drains],
            "lag": drain_lag_summary(drains[0].lag, records),
            "lag_per_run": [drain_lag_summary(d.lag, records) for d in drains],
        }
        # Worker seconds per event at E's median rate, against the metrics' own seconds.
        cost["share_of_E"] = cost["per_event_s"] * figures["E"]["median"]
        figures["E"]["metrics"] = cost
        self.note(
            f"metrics: {cost['per_batch_s'] * 1e6:,.0f} µs per 1,000-record batch, "
            f"{cost['share_of_E']:.2%} of E's time per event; a scrape "
            f"{cost['scrape_s'] * 1e3:.2f} ms"
        )
        figures["I"] = {
            **spread([float(d.peak_rss) for d in drains]),
            "unit": "bytes",
            # with 2 processes: every process together, and the largest one
            "two_processes": spread([float(d.peak_rss) for d in group_drains]),
            "largest_process": spread(
                [float(d.peak_process_rss) for d in [*drains, *group_drains]]
            ),
        }
        figures["E_2proc"] = {
            **spread([d.rate for d in group_drains]),
            "unit": "events/s",
            "runs": [d.rate for d in group_drains],
            "startup_s": spread([d.startup_s for d in group_drains]),
            "lag": drain_lag_summary(group_drains[0].lag, records),
        }
        figures["E_sealed"] = {
            **spread([d.rate for d in sealed_drains]),
            "unit": "events/s",
            "runs": [d.rate for d in sealed_drains],
            "plain_runs": [d.rate for d in drains],
        }

        rates = []
        with self.step("D: COPY of the rows E wrote into fresh tables of the same shape"):
            rows_dir = tmp / "rows"
            rows_dir.mkdir()
            rows = fig.dump_projected_rows(live.db_url, rows_dir)
            self.note("rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
            for n in range(o.repeats):
                url = scratch.database(f"d{n + 1}")
                rates.append(records / fig.copy_rows(url, rows_dir))
                scratch.drop_database(url)
                self.note(f"run {n + 1}: {rates[-1]:,.0f} events/s")
            shutil.rmtree(rows_dir)
        figures["D"] = {**spread(rates), "unit": "events/s", "rows": rows}

        figures["H"] = self._queries(scratch, live, workload_topic, records, workload, extras)

        half = figures["E"]["median"] / 2
        count = max(100, round(half * o.freshness_seconds))
        with self.step(f"F: freshness at {half:,.0f} events/s for {o.freshness_seconds:.0f} s"):
            events = fresh_events(count + 1, o.customers, seed=o.seed)
            figures["F"] = {
                **fig.freshness(live, events, half, self.logs / "worker-f.log"),
                "unit": "ms",
            }
            self.note(f"p50 {figures['F']['p50_ms']:.0f} ms, p99 {figures['F']['p99_ms']:.0f} ms")
        if o.population:
            with self.step(f"P: top and segments over {o.population:,} customers"):
                url = scratch.database("population")
                figures["P"] = population_at_scale(url, o.population, min(o.query_samples, 200))
                scratch.drop_database(url)
                p = figures["P"]
                self.note(
                    f"ranking {p['rank_all_s']:.1f} s, again {p['rank_again_s']:.1f} s; "
                    + ", ".join(
                        f"{name} p99 {q['p99_ms']:.1f} ms" for name, q in p["queries"].items()
                    )
                )
        ranked = extras["refresh_scores"]["customers"]
        identity = extras["identity"]
        truth = workload.truth
        extras["notes"].append(
            f"identity: {identity['customers']:,} customers and {identity['visitors']:,} "
            f"visitors never identified, from {identity['keys']:,} keys; the workload holds "
            f"{truth['customers']:,} customers (of {o.customers:,} simulated, plus the heavy "
            f"one) and {truth['visitors']:,} such visitors; top-100 ranks the {ranked:,} "
            "customers of the population"
        )
        return figures, extras

    def _queries(
        self,
        scratch: Scratch,
        live: Settings,
        workload_topic: str,
        records: int,
        workload: Any,
        extras: dict[str, Any],
    ) -> dict[str, Any]:
        o = self.options
        with self.step("H: the population scored at once (refresh-scores), then queries idle"):
            scored, seconds = fig.refresh_all_scores(live.db_url, workload.as_of)
            extras["refresh_scores"] = {"customers": scored, "seconds": seconds}
            self.note(f"population at once: {scored:,} customers in {seconds:.1f} s")
            extras["identity"] = fig.identity_counts(live.db_url)
            self.note(
                "identity: {customers:,} customers, {visitors:,} visitors, {keys:,} keys, "
                "{blocked:,} shared identifiers".format(**extras["identity"])
            )
            bench = fig.QueryBench(
                live.db_url, HEAVY_CUSTOMER, workload.as_of, workload.historic_as_of
            )
            idle = bench.sample(o.query_samples, o.query_budget_s)

        label = "profiled, " if o.profile else ""
        with self.step(
            f"H under load: queries while an extra E run ({label}first "
            f"{min(records, LOAD_RUN_RECORDS):,} records) drains"
        ):
            url = scratch.database("load")
            settings = scratch.settings(workload_topic, url, "load")
            projected = ProjectedCount(url, workload_topic)
            background = fig.BackgroundQueries(bench, o.query_samples, o.query_budget_s)
            profile = self.profile_prefix if o.profile else None
            try:
                with WorkerProcess(settings, self.logs / "worker-load.log", profile) as worker:
                    drain = watch_drain(
                        worker,
                        projected,
                        min(records, LOAD_RUN_RECORDS),
                        timeout_s=600 + records / 200,
                        on_first_batch=background.start,
                    )
                    under_load = background.finish()
            finally:
                projected.close()
                bench.close()
            scratch.drop_database(url)
            extras["load_run"] = {
                "records": drain.records,
                "rate": drain.rate,
                "drain_s": drain.drain_s,
                "profiled": o.profile,
                "with_queries": True,
            }
            self.note(f"that run: {drain.rate:,.0f} events/s over {drain.drain_s:.1f} s")
        if profile is not None:
            extras["profile"] = profile_summary(profile)
        return {
            "idle": fig.summarize_queries(idle),
            "under_load": fig.summarize_queries(under_load),
            "load_window_s": drain.drain_s,
            "customer_events": workload.heavy_events,
            "customers": o.customers,
            "identity": {"resolved": extras["identity"], "truth": workload.truth},
        }


def run_bench(base: Settings, options: BenchOptions, console: Console) -> dict[str, Any]:
    return Harness(base, options, console).run()


def profile_summary(prefix: Path) -> dict[str, Any]:
    """Where the profile is, and its top frames by own time (from the text rendering)."""
    html, txt = Path(f"{prefix}.html"), Path(f"{prefix}.txt")
    if not txt.exists():
        return {"html": None, "txt": None, "top_frames": []}
    frames = []
    for line in txt.read_text().splitlines():
        match = re.match(r"^\s*([\d.]+)% (.+?)\s{2}(\S.*)$", line)
        if match:
            frames.append(
                {"share": float(match[1]) / 100, "frame": match[2], "where": match[3].strip()}
            )
        elif frames and not line.strip():
            break
    return {"html": str(html), "txt": str(txt), "top_frames": frames[:25]}


def machine_facts(settings: Settings) -> dict[str, Any]:
    from streams import kafka_clients

    # ApiVersions tells the protocol generation (e.g. 4.1), not the exact release.
    admin = kafka_clients.admin(settings.bootstrap)
    try:
        broker = admin.describe_cluster()["brokers"][0]["broker_id"]
        broker_api = admin.get_broker_version_data(broker).broker_version_str
    finally:
        admin.close()
    engine = sa.create_engine(settings.db_url)
    try:
        with engine.connect() as conn:
            postgresql = conn.execute(sa.text("SHOW server_version")).scalar_one()
    finally:
        engine.dispose()
    return {
        "cores": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": psutil.virtual_memory().total / 2**30,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka": {"version": KAFKA_VERSION, "broker_api": broker_api},
        "postgresql": postgresql,
        "load_average_start": _load_average(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
