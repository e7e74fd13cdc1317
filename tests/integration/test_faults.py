"""Fault injection on the real broker and database, with exact accounting.

After each fault every published event is in the timeline exactly once or parked in the
dead-letter topic with its reason, and the live version equals a clean rebuild (so no
counter, purchase or channel total counted anything twice). The figures each test
measures (time to resume) are printed with -s and quoted in the closing notes.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import orjson
import pytest
import sqlalchemy as sa
from kafka import KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient, NewTopic

from infra import bootstrap
from infra.settings import Settings
from producers.simulator import simulate
from projections.postgres import views
from projections.postgres.store import create_schema, make_engine
from schemas import Envelope, encode_event
from tests.conftest import ServiceControl
from tests.integration.accounting import (
    assert_accounted,
    publish_sealed,
    stored_total,
    wait_drained,
)
from tests.integration.projection_snapshot import projected_count
from tests.support import free_port, running_worker, scrape, wait_for
from tests.workload import mixed_events

pytestmark = pytest.mark.integration

RESUME_LIMIT_S = 30.0  # the promise: resume by itself within 30 s of the service
# The faults that matter most run against one worker process and against a group of two
# sharing the partitions (`rapport worker --processes 2`).
PROCESSES = pytest.mark.parametrize("processes", [1, 2], ids=["1 process", "2 processes"])


def _simulated(count: int, customers: int, seed: int) -> list[Envelope]:
    return list(itertools.islice(simulate(customers=customers, seed=seed), count))


_publish = publish_sealed


def _progress(settings: Settings) -> int:
    """Stored records, or -1 while PostgreSQL does not answer."""
    try:
        return stored_total(settings)
    except sa.exc.OperationalError:
        return -1


def _time_to_progress(settings: Settings, since: int, *, timeout: float) -> float:
    began = time.monotonic()
    wait_for(
        lambda: _progress(settings) > since,
        timeout=timeout,
        what="the worker to store a batch again",
        interval=0.2,
    )
    return time.monotonic() - began


def _health(port: int) -> dict:
    """The worker's /readyz answer (503 while it waits for a dependency); its /healthz
    answers 200 all along, since waiting is no reason to restart it."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
        alive = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
    except httpx.HTTPError:
        return {}
    return {"http": response.status_code, "alive": alive, **response.json()}


@PROCESSES
def test_postgres_restarted_three_times_while_the_worker_drains(
    rapport_settings: Settings, services: ServiceControl, processes: int
) -> None:
    published = _publish(rapport_settings, _simulated(50_000, customers=5_000, seed=11))
    resumed = []
    with running_worker(rapport_settings, "--batch-size", "500", processes=processes) as worker:
        for target in (5_000, 15_000, 25_000):
            wait_for(lambda t=target: _progress(rapport_settings) >= t, timeout=120, what="load")
            services.restart_postgres(down_s=1.0)
            back = wait_for(lambda: (p := _progress(rapport_settings)) >= 0 and p + 1, what="up")
            resumed.append(_time_to_progress(rapport_settings, back - 1, timeout=RESUME_LIMIT_S))
            assert worker.poll() is None, "the worker exited"
        wait_drained(rapport_settings)
        assert worker.poll() is None
    print(f"\npostgres restarts: resumed after {[round(s, 1) for s in resumed]} s")
    assert projected_count(make_engine(rapport_settings.db_url), "core_v1") == len(published)
    assert_accounted(rapport_settings, published)


@PROCESSES
def test_the_broker_restarted_while_the_worker_drains(
    rapport_settings: Settings, services: ServiceControl, processes: int
) -> None:
    published = _publish(rapport_settings, _simulated(30_000, customers=3_000, seed=12))
    with running_worker(rapport_settings, "--batch-size", "500", processes=processes) as worker:
        wait_for(lambda: _progress(rapport_settings) >= 5_000, timeout=120, what="some load")
        services.stop_kafka()
        at_stop = _progress(rapport_settings)
        time.sleep(5)
        services.start_kafka()
        resumed = _time_to_progress(rapport_settings, at_stop, timeout=RESUME_LIMIT_S)
        wait_drained(rapport_settings)
        assert worker.poll() is None, "the worker exited instead of resuming"
    print(f"\nbroker restart: resumed {resumed:.1f} s after the broker answered")
    assert_accounted(rapport_settings, published)


SIGKILLS = int(os.environ.get("RAPPORT_SOAK_KILLS", "8"))


@PROCESSES
@pytest.mark.timeout(300 + 30 * SIGKILLS)
def test_the_worker_sigkilled_at_random_points(rapport_settings: Settings, processes: int) -> None:
    """A short soak in `make test`; `make soak` runs it with 50+ kills. A group's members
    die with it (the kernel kills them), mid-batch or mid-rebalance."""
    events = _simulated(10_000 + 4_000 * SIGKILLS, customers=2_000, seed=13)
    published = _publish(rapport_settings, events)
    rng = random.Random(13)
    kills = 0
    while kills < SIGKILLS and _progress(rapport_settings) < len(events):
        batch_size = str(rng.choice([50, 200, 1000]))
        with running_worker(
            rapport_settings, "--batch-size", batch_size, processes=processes
        ) as worker:
            before = max(0, _progress(rapport_settings))
            if rng.random() < 0.8:  # else: while it starts, joins the group, seeks
                wait_for(lambda b=before: _progress(rapport_settings) > b, timeout=90, what="batch")
            # …then at a random moment: mid-batch, mid-commit, between commits.
            time.sleep(rng.uniform(0.0, 1.5))
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            kills += 1
    with running_worker(rapport_settings):
        wait_drained(rapport_settings)
    print(f"\nsoak: {kills} SIGKILLs, {len(published)} events")
    assert kills == SIGKILLS, "the topic drained before every kill was made: publish more"
    assert_accounted(rapport_settings, published)


def _raw(settings: Settings, values: list[bytes]) -> None:
    """A third-party producer: no contract check before Kafka."""
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap, acks="all")
    for value in values:
        producer.send(settings.topic, key=b"cust-poison", value=value)
    producer.flush()
    producer.close()


def _with(event: Envelope, **changes: object) -> bytes:
    """The event under a new event_id with fields changed (`payload__traits` = nested)."""
    raw = orjson.loads(encode_event(event))
    raw["event_id"] = str(uuid.uuid4())
    for path, value in changes.items():
        target = raw
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[part]
        target[leaf] = value
    return json.dumps(raw).encode()  # the standard library writes integers of any size


@PROCESSES
def test_poison_records_are_parked_and_their_batch_stored(
    rapport_settings: Settings, processes: int
) -> None:
    s = rapport_settings
    good = mixed_events(customers=30, per_customer=20, seed=14)  # 600 events
    template = next(e for e in good if e.type == "profile.updated")
    poison = {
        "utc offset +18:00": _with(template, occurred_at="2026-03-01T10:00:00+18:00"),
        "year 1 at +05:00": _with(template, occurred_at="0001-01-01T00:00:00+05:00"),
        "year 9999 at -05:00": _with(template, occurred_at="9999-12-31T23:30:00-05:00"),
        "integer beyond 64 bits": _with(template, payload__traits={"visits": 2**70}),
    }
    # A customer whose profile outgrows its bound: the events past it are refused by the fold.
    flood = [
        Envelope.new(
            template.payload,
            customer=template.customer.model_copy(
                update={
                    "customer_id": "cust-flood",
                    "external_ids": {f"sys{n}": f"{k}-{n}" for n in range(20)},
                    "social_handles": {f"net{n}": f"{k}-{n}" for n in range(20)},
                }
            ),
            occurred_at=template.occurred_at,
        )
        for k in range(27)
    ]
    refused_by_db = good[311]
    engine = make_engine(s.db_url)
    for schema in ("core_v1", "core_v99"):  # the live version and the verifying rebuild
        create_schema(engine, schema)
        with engine.begin() as conn:  # PostgreSQL refuses one row, as a constraint would
            conn.execute(
                sa.text(
                    f"""CREATE FUNCTION "{schema}".refuse() RETURNS trigger AS $$ BEGIN
                    IF NEW.event_id = '{refused_by_db.event_id}' THEN
                      RAISE EXCEPTION 'refused by a rule' USING ERRCODE = 'check_violation';
                    END IF; RETURN NEW; END $$ LANGUAGE plpgsql;
                    CREATE TRIGGER refuse BEFORE INSERT ON "{schema}".timeline
                    FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse();"""
                )
            )
    values = [encode_event(e) for e in good]
    for n, value in enumerate([*poison.values(), *map(encode_event, flood)]):
        values.insert(37 * (n + 1), value)
    _raw(s, values)

    with running_worker(s, "--batch-size", "300", processes=processes):
        wait_drained(s)
    published = {e.event_id for e in good} | {e.event_id for e in flood}
    poison_ids = {uuid.UUID(orjson.loads(v)["event_id"]) for v in poison.values()}
    refused_flood = {e.event_id for e in flood[24:]}  # 24 × 40 identifiers + 1 = 961 fit
    book = assert_accounted(
        s, published | poison_ids, parked=poison_ids | refused_flood | {refused_by_db.event_id}
    )
    stages = {p.event_id: (p.stage, p.error) for p in book.parked}
    assert stages[str(refused_by_db.event_id)][0] == "database"
    assert "SQLSTATE 23514" in stages[str(refused_by_db.event_id)][1]
    assert {stages[str(i)][0] for i in refused_flood} == {"fold"}
    assert all("1,000 identifiers" in stages[str(i)][1] for i in refused_flood)
    assert {stages[str(i)][0] for i in poison_ids} == {"decode"}
    assert any("UTC offset must be between" in stages[str(i)][1] for i in poison_ids)
    assert any("integer beyond 64 bits" in stages[str(i)][1] for i in poison_ids)


@contextmanager
def _health_port(settings: Settings) -> Iterator[tuple[Settings, int]]:
    port = free_port()
    yield settings.model_copy(update={"worker_health_port": port}), port


@pytest.mark.parametrize("fault", ["missing", "too small"])
def test_a_dead_letter_write_that_fails_holds_the_batch(
    rapport_settings: Settings, fault: str
) -> None:
    s = rapport_settings
    good = mixed_events(customers=5, per_customer=20, seed=15)
    garbage = b"x" * 4000  # not JSON: parked at decode, with its bytes
    _raw(s, [encode_event(e) for e in good[:50]])
    admin = KafkaAdminClient(bootstrap_servers=s.bootstrap)
    with _health_port(s) as (settings, port), running_worker(settings) as worker:
        wait_drained(s)
        admin.delete_topics([s.dlq_topic])
        wait_for(lambda: s.dlq_topic not in admin.list_topics(), what="the DLQ topic deleted")
        if fault == "too small":  # the parked record is larger than the topic accepts
            small = {"max.message.bytes": "512"}
            admin.create_topics([NewTopic(s.dlq_topic, 1, 1, topic_configs=small)])
        _raw(s, [encode_event(e) for e in good[50:60]] + [garbage])
        _raw(s, [encode_event(e) for e in good[60:]])
        status = wait_for(
            lambda: (h := _health(port)).get("waiting_for") == "the dead-letter topic" and h,
            timeout=90,
            what="the worker to say it waits for the dead-letter topic",
        )
        assert status["http"] == 503 and s.dlq_topic in status["reason"]
        assert status["alive"] == 200
        time.sleep(3)
        assert _progress(s) <= 60, "records after the unparkable one were stored"
        if fault == "missing":
            admin.create_topics([NewTopic(s.dlq_topic, 1, 1)])
        else:
            big = {"max.message.bytes": "1048576"}
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, s.dlq_topic, big)])
        wait_drained(s, timeout=60)
        assert _health(port)["status"] == "ok"
        assert worker.poll() is None
        metrics = scrape(f"http://127.0.0.1:{port}/metrics")
        parked = {
            k[1]: v for k, v in metrics.items() if k[0] == "rapport_worker_dead_letters_total"
        }
        # Labels by name: (error_type, stage).
        assert [stage for _, stage in parked] == ["decode"] and sum(parked.values()) == 1
        assert metrics[("rapport_worker_retries_total", ("the dead-letter topic",))] > 0
    admin.close()
    book = assert_accounted(s, {e.event_id for e in good})
    assert [p.value for p in book.parked] == [garbage]


def test_postgres_refusing_writes_for_a_while(
    rapport_settings: Settings, service_urls: tuple[str, str]
) -> None:
    s = rapport_settings
    database = sa.make_url(s.db_url).database
    admin = sa.create_engine(service_urls[1], isolation_level="AUTOCOMMIT")

    def read_only(on: bool) -> None:
        with admin.connect() as conn:
            setting = "SET default_transaction_read_only = on" if on else "RESET ALL"
            conn.execute(sa.text(f'ALTER DATABASE "{database}" {setting}'))
            conn.execute(  # sessions keep the old default: end them, as a failover would
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"
                ),
                {"d": database},
            )

    published = _publish(s, mixed_events(customers=50, per_customer=40, seed=16)[:1000])
    later = mixed_events(customers=50, per_customer=40, seed=17)
    # A customer's first event needs a data key made (a write): these customers exist before
    # the database refuses writes, as most do; publishing then only reads their keys.
    bootstrap.sealer(s).prepare(later)
    with _health_port(s) as (settings, port), running_worker(settings, "--batch-size", "100"):
        wait_for(lambda: _progress(s) > 0, timeout=90, what="a first batch")
        read_only(True)
        more = _publish(s, later)
        status = wait_for(
            lambda: (h := _health(port)).get("waiting_for") == "PostgreSQL" and h,
            timeout=30,
            what="the worker to say it waits for PostgreSQL",
        )
        assert "read-only" in status["reason"]
        metrics = scrape(f"http://127.0.0.1:{port}/metrics")
        assert metrics[("rapport_worker_waiting", ())] == 1
        assert metrics[("rapport_worker_retries_total", ("PostgreSQL",))] > 0
        at_refusal = _progress(s)
        time.sleep(3)
        assert _progress(s) == at_refusal
        read_only(False)
        resumed = _time_to_progress(s, at_refusal, timeout=RESUME_LIMIT_S)
        wait_drained(s)
    admin.dispose()
    print(f"\nread-only database: resumed {resumed:.1f} s after writes were allowed again")
    assert_accounted(s, published | more)


def test_a_batch_waiting_on_a_swap_lands_in_the_new_version(rapport_settings: Settings) -> None:
    s = rapport_settings
    events = mixed_events(customers=20, per_customer=30, seed=18)
    engine = make_engine(s.db_url)
    first = _publish(s, events[:300])
    with running_worker(s, "--batch-size", "50"):
        wait_drained(s)
        bootstrap.rebuilder(s, jobs=1).build(2)
        with engine.begin() as swap:  # a swap that holds the version lock…
            assert views.active_schema(swap, lock="update") == "core_v1"
            views.activate(swap, "core_v2")
            later = _publish(s, events[300:])
            # …while the worker's next batch waits for it.
            wait_for(
                lambda: _waiting_on_registry(engine),
                timeout=60,
                what="a batch waiting on the version lock",
            )
        wait_drained(s, schema="core_v2")
    with engine.connect() as conn:
        v1 = set(conn.execute(sa.text("SELECT event_id FROM core_v1.timeline")).scalars())
        v2 = set(conn.execute(sa.text("SELECT event_id FROM core_v2.timeline")).scalars())
    assert v2 == first | later
    assert v1 == first, "a batch that waited on the swap was written to the old version"


def _waiting_on_registry(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%projection_versions%FOR SHARE%'"
                )
            ).scalar_one()
        )


def _as_posted(event: Envelope) -> dict:
    """An event as a write key's client posts it: the key names its source system, and
    Rapport stamps received_at."""
    body = json.loads(encode_event(event))
    body.pop("received_at", None)
    del body["source"]["system"]
    return body


def test_the_collector_through_a_broker_restart(
    rapport_settings: Settings, services: ServiceControl
) -> None:
    from tests.support import rapport, running_collector

    s = rapport_settings
    key = rapport(s, "sources", "add", "faults").stdout.strip().split()[-1]
    events = mixed_events(customers=40, per_customer=25, seed=19)  # 1,000 events
    statuses: list[int] = []
    accepted: set[uuid.UUID] = set()
    down_since: float | None = None
    with running_collector(s, RAPPORT_COLLECTOR_ACK_TIMEOUT_S="3") as base:
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        for n in range(0, len(events), 20):
            batch = events[n : n + 20]
            if n == 200:
                services.stop_kafka()
                down_since = time.monotonic()
            body = [_as_posted(e) for e in batch]
            deadline = time.monotonic() + 120
            while True:  # a client that retries on 503 as Retry-After asks
                if down_since is not None and time.monotonic() - down_since > 8:
                    services.start_kafka()
                    down_since = None
                response = client.post("/v1/events", json=body)
                statuses.append(response.status_code)
                if response.status_code == 200:
                    accepted |= {e.event_id for e in batch}
                    break
                assert response.status_code == 503, response.text
                assert int(response.headers["Retry-After"]) >= 1
                assert time.monotonic() < deadline, "the collector never accepted the batch"
                time.sleep(0.5)
        client.close()
    assert 503 in statuses, "the broker restart was not noticed"
    assert set(statuses) <= {200, 503}
    assert accepted == {e.event_id for e in events}
    with running_worker(s):
        wait_drained(s)
    book = assert_accounted(s, accepted)
    assert accepted <= book.projected
