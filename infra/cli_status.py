"""`rapport status`: the pipeline's health on one screen (infra/status.py collects it)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from infra.cli_query import print_json
from infra.status import Status, collect

_STATE_STYLE = {"up": "green", "down": "red", "not ready": "yellow"}


def register(app: typer.Typer, out: Console, settings_factory: Any) -> None:
    @app.command()
    def status(
        as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
    ) -> None:
        """Services, lag per partition, freshness, dead letters, the active projection
        version, the workers in the group and the last error. Exits 1 when a service is
        down or events wait to be projected, so scripts can check it."""
        found = collect(settings_factory())
        if as_json:
            print_json(out, found.to_json())
        else:
            out.print(render(found))
        healthy = all(s.state == "up" for s in found.services if s.name in _CORE)
        raise typer.Exit(0 if healthy and not found.lag else 1)


# What must run for events to be projected; the collector and read API are optional.
_CORE = {"kafka", "postgres", "worker"}


def render(status: Status) -> Group:
    services = Table(title="Services", title_justify="left")
    for column in ("service", "state", "detail"):
        services.add_column(column)
    for s in status.services:
        services.add_row(s.name, Text(s.state, style=_STATE_STYLE.get(s.state, "")), Text(s.detail))

    lag = Table(title=f"Lag: {status.topic}", title_justify="left")
    for column in ("partition", "log end", "projected to", "lag", "last stored"):
        lag.add_column(column, justify="right")
    for p in status.partitions or []:
        stored = p.stored_at.strftime("%Y-%m-%d %H:%M:%S") if p.stored_at else "—"
        lag.add_row(str(p.partition), str(p.end), str(p.position), str(p.lag), stored)
    total = "unknown (Kafka or PostgreSQL did not answer)" if status.lag is None else status.lag

    freshness = (
        f"{status.freshness_s:,.1f} s (newest projected event arrived "
        f"{status.last_received_at:%Y-%m-%d %H:%M:%S} UTC)"
        if status.freshness_s is not None and status.last_received_at is not None
        else "no event projected yet"
    )
    dead = status.dead_letters
    dead_line = (
        "unknown"
        if dead is None
        else f"{dead.total}"
        + (
            " ("
            + ", ".join(f"{r}: {n}" for r, n in dead.by_reason.items())
            + ("" if dead.reasons_of >= dead.total else f"; of the newest {dead.reasons_of:,}")
            + ")"
            if dead.total
            else ""
        )
    )
    workers = Table(title=f"Workers in the group: {len(status.workers)}", title_justify="left")
    for column in ("member", "host", "partitions", "ready", "last error"):
        workers.add_column(column)
    for w in status.workers:
        partitions = "—" if w.partitions is None else ",".join(map(str, w.partitions)) or "none"
        ready = "—" if w.ready is None else ("yes" if w.ready else "no")
        workers.add_row(Text(w.member), w.host, partitions, ready, Text(w.last_error or ""))

    summary = Text()
    summary.append(f"Lag: {total}\n", style="bold" if status.lag else "")
    summary.append(f"Freshness: {freshness}\n")
    summary.append(f"Dead letters: {dead_line}\n", style="yellow" if dead and dead.total else "")
    summary.append(f"Active projection version: {status.active_version or 'none'}\n")
    probed = any(w.ready is not None for w in status.workers)
    unknown = (
        "none" if probed or not status.workers else "not known (no worker serves a health port)"
    )
    summary.append(f"Last error: {status.last_error or unknown}")
    return Group(services, lag, summary, workers)
