"""`rapport bench-replay`: the replay rate at scale (10M events by default), beside the
references it is judged against, all measured in the same run.

`rapport bench` keeps its workload in memory and measures every figure; at 10M events
that would need tens of GiB and hours. This run streams the workload into one topic and
measures what the replay is compared with:

  fill  the simulator, in a child process, generates and encodes the events chunk by
        chunk while this process sends them (set-up, reported but not a figure)
  C     drain-only consume of the topic from offset 0
  G     replay from offset 0 into a fresh database, indexes included, as `rapport replay`
        builds a version; the first run's database is kept for D
  D     the rows G's first run wrote, dumped, then COPYed into fresh databases
  E     `rapport worker` on a fresh database and group, timed over its first
        `live_records` records: it drains a pre-filled topic at a steady rate (see the
        lag line of `rapport bench`), so a sample gives its rate without hours of run
C and D are cheap and run at least 3 times; G and E run `repeats` times.
"""

from __future__ import annotations

import multiprocessing
import queue
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer
from rich.console import Console
from rich.table import Table

from bench import figures as fig
from bench.harness import Steps, machine_facts
from bench.stats import spread
from bench.worker_run import BenchError
from infra.scratch import Scratch
from infra.settings import Settings
from producers import PublisherConfig

CHUNK = 100_000  # events per chunk the simulator hands over: ~50 MB of encoded records
CHEAP_REPEATS = 3


@dataclass(frozen=True)
class ScaleOptions:
    events: int = 10_000_000
    customers: int = 1_000_000
    repeats: int = 1
    live_records: int = 1_000_000
    jobs: int | None = None  # replay processes; None: one per core
    out: Path = Path("replay-results.json")
    seed: int = 7


def run_replay_scale(base: Settings, options: ScaleOptions, console: Console) -> dict[str, Any]:
    began = time.monotonic()
    o = options
    steps = Steps(console, o.out.parent / f"{o.out.stem}.logs")
    steps.logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "options": {**asdict(o), "out": str(o.out)},
        "machine": machine_facts(base),
    }
    figures: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="rapport-bench-replay-") as tmp,
        closing(Scratch(base, Path(tmp) / "state")) as scratch,
    ):
        results["run_id"] = scratch.run_id
        topic = scratch.topic("workload")
        with steps.step(f"fill: simulating and sending {o.events:,} events"):
            results["fill"] = fill_topic(base.bootstrap, topic, o.events, o.customers, o.seed)
            steps.note(
                f"{results['fill']['events']:,} events, {results['fill']['bytes'] / 2**30:.2f} GiB "
                f"encoded, in {results['fill']['seconds']:,.0f} s"
            )
        records = results["fill"]["events"]

        rates = []
        with steps.step("C: drain-only consume from offset 0"):
            for n in range(max(o.repeats, CHEAP_REPEATS)):
                count, rate = fig.drain_consume(base.bootstrap, topic)
                if count != records:
                    raise BenchError(f"consumed {count:,} records, the topic has {records:,}")
                rates.append(rate)
                steps.note(f"run {n + 1}: {rate:,.0f} events/s")
        figures["C"] = {**spread(rates), "unit": "events/s"}

        replays: list[fig.ReplayRun] = []
        kept = ""
        with steps.step("G: replay from offset 0 into a new version, indexes included"):
            for n in range(o.repeats):
                url = scratch.database(f"g{n + 1}")
                replays.append(fig.replay(url, base.bootstrap, topic, jobs=o.jobs))
                if kept:
                    scratch.drop_database(url)
                else:
                    kept = url
                steps.note(
                    f"run {n + 1}: {replays[-1].rate:,.0f} events/s (replay "
                    f"{replays[-1].replay_seconds:,.1f} s of {replays[-1].seconds:,.1f} s)"
                )
        figures["G"] = {
            **spread([r.rate for r in replays]),
            "unit": "events/s",
            "jobs": replays[0].jobs,
            "seconds": [r.seconds for r in replays],
            "replay_loop_seconds": [r.replay_seconds for r in replays],
        }

        rates = []
        with steps.step("D: COPY of the rows G wrote into fresh tables of the same shape"):
            rows_dir = Path(tmp) / "rows"
            rows_dir.mkdir()
            rows = fig.dump_projected_rows(kept, rows_dir)
            scratch.drop_database(kept)
            steps.note("rows: " + ", ".join(f"{t} {n:,}" for t, n in rows.items()))
            for n in range(max(o.repeats, CHEAP_REPEATS)):
                url = scratch.database(f"d{n + 1}")
                rates.append(records / fig.copy_rows(url, rows_dir))
                scratch.drop_database(url)
                steps.note(f"run {n + 1}: {rates[-1]:,.0f} events/s")
            shutil.rmtree(rows_dir)
        figures["D"] = {**spread(rates), "unit": "events/s", "rows": rows}

        sample = min(o.live_records, records)
        drains = []
        with steps.step(f"E: `rapport worker` over the first {sample:,} records"):
            for n in range(o.repeats):
                url = scratch.database(f"e{n + 1}")
                settings = scratch.settings(topic, url, f"e{n + 1}")
                drains.append(steps.drain(settings, sample, 300 + sample / 500, f"e{n + 1}"))
                scratch.drop_database(url)
        figures["E"] = {
            **spread([d.rate for d in drains]),
            "unit": "events/s",
            "records": sample,
            "startup_s": spread([d.startup_s for d in drains]),
        }
    results["figures"] = figures
    results["ratios"] = scale_ratios(figures)
    results["duration_s"] = round(time.monotonic() - began, 1)
    o.out.parent.mkdir(parents=True, exist_ok=True)
    o.out.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2, default=str))
    console.print(scale_table(results))
    console.print(f"results: {o.out}", highlight=False)
    return results


def scale_ratios(figures: dict[str, Any]) -> dict[str, Any]:
    c, d, g, e = (figures[k]["median"] for k in "CDGE")
    return {
        "G/C": g / c,
        "G/D": g / d,
        "G/min(C,D)": g / min(c, d),
        "G/E": g / e,
        "target": {"rule": "G ≥ 2 × E", "threshold": 2 * e, "met": g >= 2 * e},
    }


def scale_table(results: dict[str, Any]) -> Table:
    f, r, fill = results["figures"], results["ratios"], results["fill"]

    def rate(k: str) -> str:
        x = f[k]
        return f"{x['min']:,.0f} / {x['median']:,.0f} / {x['max']:,.0f} events/s"

    out = Table(
        title=f"rapport bench-replay: {fill['events']:,} events, "
        f"{results['options']['customers']:,} customers",
        title_justify="left",
        show_lines=True,
    )
    for column in ("", "figure", "measured (min / median / max)", "vs G", "target"):
        out.add_column(column)
    verdict = "[green]met[/green]" if r["target"]["met"] else "[red]missed[/red]"
    out.add_row("C", "drain-only consume from offset 0", rate("C"), f"G/C = {r['G/C']:.2f}", "")
    out.add_row("D", "COPY of the projected rows", rate("D"), f"G/D = {r['G/D']:.2f}", "")
    out.add_row(
        "G",
        f"replay from offset 0 + index build\n({f['G']['jobs']} replay processes)",
        rate("G"),
        "",
        f"G ≥ 2 × E: {verdict}",
    )
    out.add_row(
        "E",
        f"live ingest, `rapport worker`\n(first {f['E']['records']:,} records)",
        rate("E"),
        f"G/E = {r['G/E']:.2f}",
        "",
    )
    return out


# -- fill: simulate in a child process, send here --------------------------------------------
def fill_topic(
    bootstrap: str, topic: str, events: int, customers: int, seed: int
) -> dict[str, Any]:
    """Send `events` simulated events; generation (one core) overlaps the sending."""
    context = multiprocessing.get_context("spawn")
    chunks: Any = context.Queue(maxsize=4)  # bounded: the simulator waits for the sender
    child = context.Process(
        target=_simulate_chunks, args=(chunks, events, customers, seed), daemon=True
    )
    producer = KafkaProducer(**PublisherConfig(bootstrap, topic).kafka_config())
    sent = size = 0
    began = time.perf_counter()
    child.start()
    try:
        for chunk in _received(chunks, child):
            for key, value in chunk:
                producer.send(topic, value=value, key=key)
                size += len(value)
            sent += len(chunk)
        producer.flush()
    finally:
        producer.close()
        child.join(timeout=30)
    return {"events": sent, "bytes": size, "seconds": time.perf_counter() - began}


def _received(chunks: Any, child: Any) -> Iterator[list[tuple[bytes, bytes]]]:
    while True:
        try:
            chunk = chunks.get(timeout=5)
        except queue.Empty:  # the simulator is still working, unless it died
            if not child.is_alive():
                raise BenchError(f"the simulator exited with code {child.exitcode}") from None
            continue
        if chunk is None:
            return
        yield chunk


def _simulate_chunks(chunks: Any, events: int, customers: int, seed: int) -> None:
    import itertools

    from producers import Publisher
    from producers.simulator import simulate

    stamper = Publisher.from_config(PublisherConfig("127.0.0.1:1", "unused", connect_eagerly=False))
    stream = itertools.islice(simulate(customers, seed=seed), events)
    while chunk := list(itertools.islice(stream, CHUNK)):
        chunks.put([(e.key, e.value) for e in map(stamper.encode, chunk)])
    chunks.put(None)
    stamper.close(timeout=1)
