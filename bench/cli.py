"""`rapport bench`: measure every path against its physical reference in one run."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console


def register(app: typer.Typer, out: Console, settings_factory: Any) -> None:
    @app.command()
    def bench(
        events: Annotated[int, typer.Option(min=1000, help="Events in the workload.")] = 1_000_000,
        customers: Annotated[int, typer.Option(min=10, help="Simulated customers.")] = 100_000,
        repeats: Annotated[int, typer.Option(min=1, help="Runs of each figure.")] = 3,
        out_path: Annotated[
            Path, typer.Option("--out", help="Results JSON; the worker profile goes beside it.")
        ] = Path("results.json"),
        seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
        freshness_seconds: Annotated[
            float | None,
            typer.Option(min=1, help="How long F publishes (default 3-30 s by workload size)."),
        ] = None,
        query_samples: Annotated[
            int, typer.Option(min=5, help="Samples per query, idle and under load.")
        ] = 200,
        profile: Annotated[
            bool, typer.Option(help="Profile the worker with pyinstrument during E.")
        ] = True,
        population: Annotated[
            int, typer.Option(min=0, help="Customers of figure P's population (0: skip P).")
        ] = 1_000_000,
    ) -> None:
        """Benchmark publish, consume, COPY, live ingest, freshness, replay, queries and
        worker memory on the configured Kafka and PostgreSQL; print and save the figures.

        Default: 1M simulated events over 100k customers, each figure 3 times. Everything
        it creates (topics, databases, consumer groups) is removed when it ends.
        """
        from bench.harness import BenchOptions, run_bench
        from infra import services

        settings = settings_factory()
        services.require(settings)  # one line if unreachable; the run makes its own topics
        if profile:
            try:
                import pyinstrument  # noqa: F401
            except ImportError:
                out.print("pyinstrument is not installed (pip install -e '.[test]'): no profile")
                profile = False
        options = BenchOptions(
            events=events,
            customers=customers,
            repeats=repeats,
            out=out_path,
            seed=seed,
            freshness_s=freshness_seconds,
            query_samples=query_samples,
            profile=profile,
            population=population,
        )
        run_bench(settings, options, out)

    @app.command("bench-replay")
    def bench_replay(
        events: Annotated[
            int, typer.Option(min=1000, help="Events streamed into the topic.")
        ] = 10_000_000,
        customers: Annotated[int, typer.Option(min=10, help="Simulated customers.")] = 1_000_000,
        repeats: Annotated[
            int, typer.Option(min=1, help="Runs of G and E (C and D run at least 3 times).")
        ] = 1,
        live_records: Annotated[
            int, typer.Option(min=1000, help="Records E's worker is timed over.")
        ] = 1_000_000,
        jobs: Annotated[
            int | None, typer.Option(min=1, help="Replay processes (default: one per core).")
        ] = None,
        out_path: Annotated[Path, typer.Option("--out", help="Results JSON.")] = Path(
            "replay-results.json"
        ),
        seed: Annotated[int, typer.Option(help="Simulator seed.")] = 7,
    ) -> None:
        """Benchmark the replay at scale (default 10M events) against the drain-only
        consume, the COPY of the same rows and the live worker, in one run.

        The workload is streamed, not kept in memory. At 10M events on 2 cores this took
        38-39 minutes; everything it creates is removed when it ends.
        """
        from bench.replay_scale import ScaleOptions, run_replay_scale
        from infra import services

        settings = settings_factory()
        services.require(settings)
        options = ScaleOptions(
            events=events,
            customers=customers,
            repeats=repeats,
            live_records=live_records,
            jobs=jobs,
            out=out_path,
            seed=seed,
        )
        run_replay_scale(settings, options, out)
