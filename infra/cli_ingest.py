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
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False)


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
) -> None:
    """Simulate customers across every channel, deterministic for a seed."""
    from producers.simulator import DEFAULT_START
    from producers.simulator import simulate as generate

    began = start.replace(tzinfo=start.tzinfo or UTC) if start else DEFAULT_START
    stream = itertools.islice(generate(customers, seed=seed, start=began), events)
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


def import_file() -> None:  # replaced below
    raise NotImplementedError
