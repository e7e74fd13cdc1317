"""`rapport demo`: touchpoints through the real broker and worker, end to end.

A burst of call-center calls for a handful of customers plus a simulated history across
every channel; then the busiest customer's timeline, profile and scores.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections import Counter
from urllib.parse import quote

import sqlalchemy as sa
from rich.console import Console

from infra import bootstrap, services
from infra.cli_status import render as render_status
from infra.errors import InfraError
from infra.render import (
    decision_table,
    profile_tables,
    scores_table,
    segment_tables,
    timeline_table,
    top_table,
    violations_table,
)
from infra.settings import Settings
from infra.status import collect as collect_status
from infra.worker_process import WorkerProcess
from producers.sample import sample_calls
from producers.simulator import simulate
from projections.postgres.contact_policy import contact_decision, contact_violations
from projections.postgres.population import population_status
from projections.postgres.queries import (
    customer_profile,
    customer_scores,
    customer_timeline,
    segments,
    top_customers,
)
from projections.postgres.store import create_schema
from projections.postgres.tables import build_tables
from projections.postgres.versions import stored_positions

PROJECT_TIMEOUT_S = 120


def run_demo(
    settings: Settings, *, customers: int, calls: int, simulated: int, console: Console
) -> None:
    began = time.monotonic()
    console.print("[bold]Rapport demo[/bold]: starting what is not running…")
    started = services.up(settings)
    for name, seconds in started.seconds.items():
        was = getattr(started, name)
        console.print(f"  {name}: {f'started in {seconds:.1f}s' if was else 'already running'}")
    worker = None
    busiest: str | None = None
    stopped: list[str] = []
    try:
        engine = bootstrap.engine(settings)
        schema = create_schema(engine, settings.projection_schema).schema
        calls_burst = list(sample_calls(customers, calls))
        history = list(itertools.islice(simulate(customers * 20, seed=11), simulated))
        events = calls_burst + history
        with bootstrap.publisher(settings) as publisher:
            publisher.publish_all(events)
        console.print(
            f"published {len(calls_burst)} calls for {customers} customers and {len(history)} "
            f"simulated touchpoints across every channel to {settings.topic}"
        )

        log_path = settings.state_dir / "worker.log"
        worker = WorkerProcess(settings, log_path).start()
        _wait_projected(engine, schema, {e.event_id for e in events}, worker)
        # On a database an earlier demo filled, those events are there already: wait for
        # the worker to reach the log's end too, so what follows shows this run's state.
        _wait_drained(settings, engine, schema, worker)
        console.print(f"worker projected every event (worker log: {log_path})")

        _wait_ranked(engine, schema, worker)
        console.print("the worker's population scorer ranked every customer (RFM, tiers)")

        busiest = Counter(e.customer.partition_key for e in events).most_common(1)[0][0]
        latest = max(e.occurred_at for e in events if e.customer.partition_key == busiest)
        with engine.connect() as conn:
            page = customer_timeline(conn, busiest, limit=20, newest_first=True)
            profile = customer_profile(conn, busiest)
            scores = customer_scores(
                conn, busiest, as_of=latest, params=bootstrap.score_parameters(settings)
            )
        console.print(timeline_table(busiest, page.rows))
        if page.next_cursor:
            console.print(f"(the 20 newest; `rapport timeline {busiest}` pages through all)")
        for table in profile_tables(profile):
            console.print(table)
        console.print(scores_table(busiest, scores))
        with engine.connect() as conn:
            _, decision = contact_decision(
                conn,
                busiest,
                channel="email",
                purpose="marketing",
                at=latest,
                rules=bootstrap.contact_rules(settings),
            )
            console.print(decision_table(busiest, decision))
            console.print(violations_table(contact_violations(conn, limit=5)))
            console.print(top_table("clv", top_customers(conn, by="clv", n=5)))
            for table in segment_tables(segments(conn)):
                console.print(table)
        engine.dispose()
        console.print("[bold]rapport status[/bold] (what an operator sees; docs/operations.md):")
        console.print(render_status(collect_status(settings)))
    finally:
        if worker is not None:
            worker.stop()
        stopped = services.down(settings, only=started)
        if stopped:
            console.print(f"stopped what the demo started: {', '.join(stopped)}")
    console.print(f"done in {time.monotonic() - began:.1f}s")
    if busiest is not None:
        console.print(page_hint(settings, busiest, services_stopped=bool(stopped)))


def page_hint(settings: Settings, customer: str, *, services_stopped: bool) -> str:
    """How to see the demo's customer on the customer page: the demo does not serve the
    read API (it ends), so the commands that do, and the address."""
    base = f"http://{settings.api_host}:{settings.api_port}"
    start = "rapport infra up && rapport api" if services_stopped else "rapport api"
    return (
        f"Customer page: {base}/ui/customers/{quote(customer, safe=':@')} "
        f"(start it with `{start}`; sign in with an agent key: "
        "`rapport api-keys add demo-agent --role agent`)"
    )


def _wait_projected(
    engine: sa.Engine, schema: str, wanted: set[uuid.UUID], worker: WorkerProcess
) -> None:
    timeline = build_tables(schema).timeline
    deadline = time.monotonic() + PROJECT_TIMEOUT_S
    ids = list(wanted)
    while True:
        with engine.connect() as conn:
            done = conn.execute(
                sa.select(sa.func.count()).select_from(timeline).where(timeline.c.event_id.in_(ids))
            ).scalar_one()
        if done == len(ids):
            return
        worker.check_alive()
        if time.monotonic() > deadline:
            raise InfraError(
                f"only {done} of {len(ids)} events projected after "
                f"{PROJECT_TIMEOUT_S}s; see {worker.log}"
            )
        time.sleep(0.2)


def _wait_drained(
    settings: Settings, engine: sa.Engine, schema: str, worker: WorkerProcess
) -> None:
    from streams.kafka_log import KafkaLog

    log = KafkaLog(settings.bootstrap)
    deadline = time.monotonic() + PROJECT_TIMEOUT_S
    try:
        ends = {p: end for (_, p), end in log.ends(settings.topic).items()}
        while True:
            with engine.connect() as conn:
                stored = stored_positions(conn, schema, settings.topic)
            behind = sum(max(0, end - stored.get(p, 0)) for p, end in ends.items())
            if not behind:
                return
            worker.check_alive()
            if time.monotonic() > deadline:
                raise InfraError(f"{behind} records not projected after {PROJECT_TIMEOUT_S}s")
            time.sleep(0.2)
    finally:
        log.close()


def _wait_ranked(engine: sa.Engine, schema: str, worker: WorkerProcess) -> None:
    """Until the worker's population scorer has scored every change it committed."""
    deadline = time.monotonic() + PROJECT_TIMEOUT_S
    while time.monotonic() < deadline:
        worker.check_alive()
        with engine.connect() as conn:
            status = population_status(conn, schema)
        if status is not None and not status["pending_keys"] and not status["stale"]:
            return
        time.sleep(0.5)
    raise InfraError(f"the population was not ranked in {PROJECT_TIMEOUT_S}s; see {worker.log}")
