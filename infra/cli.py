"""The `rapport` command line: thin commands over the composition root."""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Annotated

import typer
from rich.console import Console

from infra import (
    cli_access,
    cli_dlq,
    cli_identity,
    cli_ingest,
    cli_privacy,
    cli_query,
    cli_replay,
    cli_status,
)
from infra.schemas_cli import schemas_app
from infra.settings import Settings
from schemas.errors import RapportError

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Rapport: customer touchpoints in Kafka, projections in PostgreSQL.",
)
infra_app = typer.Typer(no_args_is_help=True, help="Run the local Kafka broker and PostgreSQL.")
app.add_typer(infra_app, name="infra")
app.add_typer(schemas_app, name="schemas")
cli_ingest.register(app)  # collector, sources, import, simulate

# Piped output (CI logs, `| less`) gets a wide console so tables do not wrap into noise.
out = Console(soft_wrap=True, emoji=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def _settings() -> Settings:
    return Settings()


@infra_app.command("up")
def infra_up(
    brokers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Run a local cluster of this many brokers (KRaft voters all); default: "
            "RAPPORT_KAFKA_BROKERS (1). Export that too, so other commands know the cluster.",
        ),
    ] = None,
) -> None:
    """Start the local broker(s) and database (those not configured as external)."""
    from infra import services
    from infra.kafka import LocalKafka

    settings = Settings(kafka_brokers=brokers) if brokers else _settings()
    started = services.up(settings)
    for name, label, began in (
        ("postgres", "postgres", started.postgres),
        ("kafka", LocalKafka(settings).name, started.kafka),
    ):
        if name in started.seconds:
            verb = f"started in {started.seconds[name]:.1f}s" if began else "already running"
            out.print(f"{label}: {verb}")
    _print_status(settings)


@infra_app.command("down")
def infra_down() -> None:
    """Stop the local broker(s), whatever the cluster's size, and database."""
    from infra import services

    stopped = services.down(_settings())
    out.print(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@infra_app.command("status")
def infra_status() -> None:
    """Say what runs where: every local broker, the database."""
    _print_status(_settings())


def _print_status(settings: Settings) -> None:
    from infra.kafka import LocalKafka
    from infra.postgres import LocalPostgres

    if settings.local_kafka:
        clusters = LocalKafka.on_disk(settings)
        # Those that run (`up --brokers 3` without RAPPORT_KAFKA_BROKERS), else the configured.
        running = [cluster for cluster in clusters if cluster.running()]
        for cluster in running or [LocalKafka(settings)]:
            for k in cluster.status():
                state = f"running (pid {k.pid})" if k.running else "stopped"
                out.print(f"{k.name:<10}{state:<22} {k.bootstrap}  data: {k.data_dir}")
    else:
        out.print(f"kafka     external               {settings.bootstrap}")
    if settings.local_postgres:
        p = LocalPostgres(settings).status()
        state = f"running (pid {p.pid})" if p.running else "stopped"
        out.print(f"postgres  {state:<22} {p.url}  data: {p.data_dir}")
    else:
        out.print(f"postgres  external               {_safe_url(settings.db_url)}")


def _safe_url(url: str) -> str:
    import sqlalchemy as sa

    return sa.make_url(url).render_as_string(hide_password=True)


@app.command()
def worker(
    batch_size: Annotated[int, typer.Option(min=1, help="Most events per transaction.")] = 1000,
    loglevel: Annotated[str, typer.Option(help="crit, error, warn, info or debug")] = "warn",
    processes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes in the consumer group (default: RAPPORT_WORKER_PROCESSES, "
            "else one per core).",
        ),
    ] = None,
    member: Annotated[int | None, typer.Option(hidden=True, min=0)] = None,
) -> None:
    """Run the stream worker: fold touchpoints from Kafka into PostgreSQL.

    With N processes, N members share the topic's partitions through Kafka's consumer
    group (docs/architecture.md); the command stops, and exits, as one."""
    import os

    from infra import bootstrap

    settings = _settings()
    bootstrap.require_services(settings)
    count = processes or settings.worker_processes or os.cpu_count() or 1
    if count > 1 and member is None:
        from infra.worker_group import run_group

        args = ["--batch-size", str(batch_size), "--loglevel", loglevel]
        raise typer.Exit(run_group(settings, count, args))

    from observability.logs import logging_config
    from streams.worker import run_worker

    config = bootstrap.worker_config(settings, batch_size=batch_size, member=member)
    run_worker(
        bootstrap.worker_app(settings, config),
        config,
        loglevel=loglevel,
        logging_config=logging_config(settings.log_format, _faust_level(loglevel)),
    )


def _faust_level(loglevel: str) -> str:
    """faust's short level names as logging's."""
    return {"crit": "critical", "warn": "warning"}.get(loglevel, loglevel)


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1)] = 5,
    calls: Annotated[int, typer.Option(min=1)] = 60,
    simulated: Annotated[
        int, typer.Option(min=0, help="Simulated touchpoints, all channels.")
    ] = 3000,
) -> None:
    """Start what is not running, publish a burst of calls, project them, show a timeline."""
    from infra.demo import run_demo

    run_demo(_settings(), customers=customers, calls=calls, simulated=simulated, console=out)


cli_query.register(app, out, _settings)
cli_dlq.register(app, out, _settings)
cli_replay.register(app, out, _settings)
cli_identity.register(app, out, _settings)
cli_privacy.register(app, out, _settings)
cli_access.register(app, out, _settings)
cli_status.register(app, out, _settings)
# Commands of packages that build on this one (`rapport bench`) register themselves
# through the `rapport.commands` entry point, so this package never imports them.
for command in entry_points(group="rapport.commands"):
    command.load()(app, out, _settings)


def main() -> None:
    try:
        app()
    except RapportError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        sys.exit(1)


if __name__ == "__main__":
    main()
