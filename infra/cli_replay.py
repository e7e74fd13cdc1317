"""`rapport replay` and `rapport projections`: rebuild views from the log, verify, swap."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from infra.cli_query import print_json


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} events/s" if speed else "…")


@contextmanager
def replay_progress(console: Console, label: str) -> Iterator[Any]:
    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield update


def register(app: typer.Typer, out: Console, settings_factory: Any) -> None:
    @app.command()
    def replay(
        version: Annotated[
            int | None, typer.Option(help="Version to build (default: next).")
        ] = None,
        verify: Annotated[
            bool, typer.Option("--verify", help="Rebuild up to the live version and compare.")
        ] = False,
        swap: Annotated[bool, typer.Option(help="Swap the new version in when built.")] = True,
        batch_size: Annotated[int, typer.Option(min=100, help="Records per transaction.")] = 20_000,
        jobs: Annotated[
            int | None,
            typer.Option(
                min=1,
                help="Replay processes, each with a share of the partitions "
                "(default: one per core).",
            ),
        ] = None,
    ) -> None:
        """Rebuild the projections from offset 0 into their own version, then swap it in.

        The live version keeps serving throughout; an interrupted replay resumes.
        """
        from infra import bootstrap
        from projections.postgres.population import population_as_of

        settings = settings_factory()
        bootstrap.require_services(settings)
        rebuilder = bootstrap.rebuilder(settings, batch_size=batch_size, jobs=jobs)
        number = version or rebuilder.next_version()
        if verify:
            with replay_progress(out, f"verify: rebuild v{number}") as progress:
                report = rebuilder.verify(number, progress)
            _print_report(out, report)
            if not report.identical:
                raise typer.Exit(2)
            return
        with replay_progress(out, f"replay v{number}") as progress:
            stats = rebuilder.build(
                number,
                progress=progress,
                scores_as_of=population_as_of(settings.scores_as_of or datetime.now(UTC).date()),
            )
        out.print(
            f"built v{number}: {stats.records:,} records in {stats.seconds:.1f}s "
            f"({stats.rate:,.0f} events/s), {stats.parked} parked (see `rapport dlq list`)"
        )
        if swap:
            old = rebuilder.swap(number)
            out.print(f"v{number} is live" + (f" (was {old}; kept until dropped)" if old else ""))

    projections = typer.Typer(
        no_args_is_help=True, help="Projection versions: list, activate, drop."
    )
    app.add_typer(projections, name="projections")

    @projections.command("list")
    def list_versions(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Every version with its status and how far it has read the log."""
        from infra import bootstrap

        versions = bootstrap.rebuilder(settings_factory()).versions()
        if as_json:
            print_json(out, [{**asdict(v), "version": v.number} for v in versions])
            return
        table = Table(title="Projection versions", title_justify="left")
        for column in ("version", "schema", "status", "records", "created", "activated"):
            table.add_column(column)
        for v in versions:
            table.add_row(
                str(v.number),
                v.name,
                ("* " if v.active else "") + v.status,
                str(v.records),
                _when(v.created_at),
                _when(v.activated_at),
            )
        out.print(table)

    @projections.command("activate")
    def activate(version: int) -> None:
        """Catch a built version up with the live head and swap it in atomically."""
        from infra import bootstrap

        settings = settings_factory()
        rebuilder = bootstrap.rebuilder(settings)
        with replay_progress(out, f"catch up v{version}") as progress:
            old = rebuilder.swap(version, progress)
        out.print(f"v{version} is live" + (f" (was {old})" if old else ""))

    @projections.command("drop")
    def drop(version: int) -> None:
        """Drop a version that is not live."""
        from infra import bootstrap

        bootstrap.rebuilder(settings_factory()).drop(version)
        out.print(f"dropped v{version}")


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _print_report(out: Console, report: Any) -> None:
    stats = report.stats
    out.print(
        f"rebuilt {report.rebuild_schema} from offset 0 up to {report.live_schema}'s "
        f"positions: {stats.records:,} records in {stats.seconds:.1f}s "
        f"({stats.rate:,.0f} events/s)"
    )
    counts = ", ".join(f"{name} {n:,}" for name, n in report.rows.items())
    if report.identical:
        out.print(f"[green]identical[/green]: {counts} rows")
        return
    out.print(f"[red]{len(report.differences)} difference(s)[/red] ({counts} rows):")
    for diff in report.differences:
        where = f"customer {diff.customer_id}" if diff.customer_id else "whole table"
        out.print(f"- {diff.table}, {where}")
        for row in diff.only_in_live:
            out.print(f"    live:    {row}", markup=False, highlight=False)
        for row in diff.only_in_rebuild:
            out.print(f"    rebuild: {row}", markup=False, highlight=False)
        for key, columns in diff.changed.items():
            changes = "; ".join(f"{c}: {old!r} -> {new!r}" for c, (old, new) in columns.items())
            out.print(f"    {key}: {changes}", markup=False, highlight=False)
