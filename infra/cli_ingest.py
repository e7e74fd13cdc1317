"""Ingestion commands: `rapport collector`, `sources …`, `import` and `simulate`.

Thin: each reads Settings, asks the composition root for what it needs, and prints.
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from infra.settings import Settings
from schemas import Envelope, encode_event

out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)

sources_app = typer.Typer(no_args_is_help=True, help="Manage the collector's write keys.")


def register(app: typer.Typer) -> None:
    """Add the ingestion commands to the `rapport` command line."""
    app.add_typer(sources_app, name="sources")
    app.command("collector")(collector)
    app.command("import")(import_file)
    app.command("simulate")(simulate)


def collector(
    host: Annotated[str | None, typer.Option(help="Default: RAPPORT_COLLECTOR_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default: RAPPORT_COLLECTOR_PORT.")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> None:
    """Serve the HTTP collector (Rapport and Segment-compatible endpoints, docs at /docs)."""
    import uvicorn

    from infra import bootstrap

    settings = Settings()
    app = bootstrap.collector_app(settings)
    host, port = host or settings.collector_host, port or settings.collector_port
    err.print(f"collector on http://{host}:{port} (docs: /docs) → {settings.topic}")
    from observability.logs import logging_config

    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=False,
        log_config=logging_config(settings.log_format, log_level) or uvicorn.config.LOGGING_CONFIG,
    )


@sources_app.command("add")
def sources_add(
    name: Annotated[str, typer.Argument(help="A name for the emitting system, e.g. webshop.")],
    rate_limit: Annotated[
        float | None,
        typer.Option(min=0.001, help="Events/s; default RAPPORT_COLLECTOR_RATE_LIMIT."),
    ] = None,
) -> None:
    """Add a source and print its write key (shown this once; only its hash is stored)."""
    from infra import bootstrap

    key = bootstrap.sources(Settings()).add(name, rate_limit=rate_limit)
    err.print(f"source {name!r} added; its write key (shown once):")
    out.print(key, highlight=False)


@sources_app.command("list")
def sources_list() -> None:
    """List the sources (key prefixes only)."""
    from infra import bootstrap

    table = Table(title="Sources", title_justify="left")
    for column in ("name", "key", "rate limit (events/s)", "created", "revoked"):
        table.add_column(column)
    for s in bootstrap.sources(Settings()).list():
        table.add_row(
            s.name,
            s.key_prefix + "…",
            f"{s.rate_limit:g}" if s.rate_limit else "default",
            f"{s.created_at:%Y-%m-%d %H:%M}",
            f"{s.revoked_at:%Y-%m-%d %H:%M}" if s.revoked_at else "",
        )
    out.print(table)


@sources_app.command("revoke")
def sources_revoke(name: Annotated[str, typer.Argument()]) -> None:
    """Revoke a source's key: its requests get 401 (within RAPPORT_COLLECTOR_KEY_CACHE_S)."""
    from infra import bootstrap

    bootstrap.sources(Settings()).revoke(name)
    out.print(f"source {name!r} revoked")


def simulate(
    customers: Annotated[int, typer.Option(min=1)] = 1000,
    events: Annotated[int, typer.Option(min=1, help="How many events to produce.")] = 10_000,
    seed: Annotated[int, typer.Option()] = 7,
    rate: Annotated[
        float | None,
        typer.Option(min=0.1, help="Events/s to publish at; default: as fast as possible."),
    ] = None,
    start: Annotated[
        datetime | None,
        typer.Option(help="Event time of the first story (UTC); default 2026-01-01."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option(help="Write JSON Lines here instead of publishing to Kafka.")
    ] = None,
    violation_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="Share of outbound touchpoints sent although the contact policy denies them.",
        ),
    ] = 0.05,
) -> None:
    """Simulate customers across every channel, deterministic for a seed."""
    from producers.simulator import DEFAULT_START
    from producers.simulator import simulate as generate

    began = start.replace(tzinfo=start.tzinfo or UTC) if start else DEFAULT_START
    stream: Iterator[Envelope] = itertools.islice(
        generate(customers, seed=seed, start=began, violation_rate=violation_rate), events
    )
    if rate is not None:
        stream = _paced(stream, rate)
    t0 = time.monotonic()
    if output is not None:
        with open(output, "wb") as file:
            count = sum(file.write(encode_event(event) + b"\n") > 0 for event in stream)
        where = str(output)
    else:
        from infra import bootstrap

        settings = Settings()
        bootstrap.require_services(settings)
        with bootstrap.publisher(settings) as publisher:
            count = publisher.publish_all(stream)
        where = settings.topic
    seconds = time.monotonic() - t0
    out.print(
        f"simulated {count} events for {customers} customers → {where} "
        f"in {seconds:.1f}s ({count / max(seconds, 1e-9):,.0f} events/s)"
    )


def _paced(events: Iterable[Envelope], rate: float) -> Iterator[Envelope]:
    """Release events at `rate` per second (catching up after a stall, never bursting ahead)."""
    t0 = time.monotonic()
    for n, event in enumerate(events):
        due = t0 + n / rate
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield event


def import_file(
    file: Annotated[
        Path, typer.Argument(help="A .csv or .jsonl file.", exists=True, dir_okay=False)
    ],
    mapping: Annotated[
        Path | None, typer.Option(help="TOML column mapping for CSV (see producers/importer).")
    ] = None,
    map_: Annotated[
        list[str] | None,
        typer.Option("--map", help="field.path=column, e.g. payload.amount=total (repeatable)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="field.path=value, e.g. type=commerce.purchased (repeatable)."),
    ] = None,
    id_column: Annotated[
        str | None, typer.Option(help="Column whose value identifies the event (order id…).")
    ] = None,
    file_format: Annotated[
        str | None, typer.Option("--format", help="csv or jsonl; default from the suffix.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option(help="The file's identity in derived event ids; default its name.")
    ] = None,
    rejects: Annotated[Path | None, typer.Option(help="Default: FILE.rejects.jsonl")] = None,
    checkpoint: Annotated[Path | None, typer.Option(help="Default: FILE.checkpoint.json")] = None,
    restart: Annotated[bool, typer.Option(help="Ignore the checkpoint; start from row 1.")] = False,
) -> None:
    """Import a CSV or JSON Lines file, resumably; rejected rows go to a rejects file."""
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from infra import bootstrap
    from producers.importer import ColumnMapping, ImportOptions, ImportProgress, run_import

    column_mapping = ColumnMapping.load(mapping) if mapping else ColumnMapping()
    column_mapping = column_mapping.with_options(map_ or [], set_ or [], id_column)
    options = ImportOptions(
        file=file,
        format="csv" if file_format == "csv" else "jsonl" if file_format == "jsonl" else None,
        mapping=column_mapping,
        dataset=dataset,
        rejects=rejects,
        checkpoint=checkpoint,
        resume=not restart,
    )
    settings = Settings()
    bootstrap.require_services(settings)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rows]:>10,} rows · {task.fields[rate]:>8,.0f} rows/s"),
        TransferSpeedColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )
    began = time.monotonic()
    with progress, bootstrap.publisher(settings) as publisher:
        task = progress.add_task(file.name, total=file.stat().st_size, rows=0, rate=0.0)

        def show(p: ImportProgress) -> None:
            rate = p.rows / max(time.monotonic() - began, 1e-9)
            progress.update(task, completed=p.bytes_done, rows=p.rows, rate=rate)

        report = run_import(options, publisher, on_progress=show)
    resumed = f" (resumed after line {report.resumed_at_line})" if report.resumed_at_line else ""
    out.print(
        f"imported {file.name}{resumed}: {report.published:,} published, "
        f"{report.rejected:,} rejected, in {report.seconds:.1f}s "
        f"({report.rows / max(report.seconds, 1e-9):,.0f} rows/s)"
    )
    if report.rejected:
        out.print(f"rejected rows with line numbers and reasons: {report.rejects_path}")
        for reason, count in report.reasons.most_common(5):
            out.print(f"  {count:>8,}  {reason}", highlight=False)
        if len(report.reasons) > 5:
            out.print(f"  … and {len(report.reasons) - 5} other reasons")
