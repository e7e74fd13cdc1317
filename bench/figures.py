"""How each figure of `rapport bench` is measured: one function per figure (E's worker
runs are in bench.worker_run). Every function times only the work it names; connection
set-up, table creation and the like happen before the clock starts."""

from __future__ import annotations

import gc
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from kafka import KafkaProducer, TopicPartition

from bench.stats import latency_ms
from bench.worker_run import BenchError, ProjectedCount, WorkerProcess, live_lag_summary
from infra.settings import Settings
from producers import EncodedEvent, Publisher, PublisherConfig
from producers.publisher import EventSealer
from projections.postgres import queries, views
from projections.postgres.contact_policy import contact_decision
from projections.postgres.population import score_population
from projections.postgres.store import make_engine
from projections.postgres.tables import build_tables
from projections.postgres.versions import PostgresVersions
from schemas import Envelope
from streams import kafka_clients
from streams.rebuild import Rebuilder

# The tables the worker writes, in the order a COPY fills them.
PROJECTED_TABLES = ("timeline", "customers", "purchases", "channel_daily", "positions")
_COPY_CHUNK = 1 << 20


# -- A, B: publishing ---------------------------------------------------------------------
def bare_send(bootstrap: str, topic: str, encoded: Sequence[EncodedEvent]) -> float:
    """A: kafka-python's send loop over the pre-encoded records with the SDK's producer
    settings, then flush. events/s after the first record's ack (connections, metadata
    and the idempotent producer id are set up before the clock starts)."""
    producer = KafkaProducer(**PublisherConfig(bootstrap, topic).kafka_config())
    try:
        first = encoded[0]
        producer.send(topic, value=first.value, key=first.key).get(30)
        began = time.perf_counter()
        for item in encoded[1:]:
            producer.send(topic, value=item.value, key=item.key)
        producer.flush()
        seconds = time.perf_counter() - began
    finally:
        producer.close()
    return (len(encoded) - 1) / seconds


def sdk_publish(
    bootstrap: str, topic: str, events: Sequence[Envelope], sealer: EventSealer | None = None
) -> float:
    """B: Publisher.publish of every Envelope (verified encoding, received_at stamp,
    keying, failure tracking, backpressure), then flush; warmed up like A. With `sealer`
    (B sealed), personal fields are sealed too, each key fetched or created the first time
    its customer is published, as an application publishing one event at a time would."""
    publisher = Publisher.from_config(PublisherConfig(bootstrap, topic, sealer=sealer))
    try:
        publisher.publish_and_wait(events[0], timeout=30)
        began = time.perf_counter()
        for event in events[1:]:
            publisher.publish(event)
        publisher.flush()
        seconds = time.perf_counter() - began
    finally:
        publisher.close()
    return (len(events) - 1) / seconds


def sealed_records(
    sealer: EventSealer, events: Sequence[Envelope], encoded: Sequence[EncodedEvent]
) -> list[EncodedEvent]:
    """The workload as a sealing producer sends it (E sealed reads these)."""
    for start in range(0, len(events), 5000):
        sealer.prepare(events[start : start + 5000])
    return [
        EncodedEvent(e.event_id, *sealer.seal(e, item.value))
        for e, item in zip(events, encoded, strict=True)
    ]


# -- C: consuming -------------------------------------------------------------------------
def drain_consume(bootstrap: str, topic: str) -> tuple[int, float]:
    """C: every record from offset 0 with kafka-python as the replay reads (no CRC
    check, big fetches), counted and dropped, no decode. (records, events/s)"""
    consumer = kafka_clients.consumer(
        bootstrap,
        check_crcs=False,
        max_poll_records=20_000,
        fetch_max_bytes=64 * 1024 * 1024,
        max_partition_fetch_bytes=16 * 1024 * 1024,
    )
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
        consumer.assign(partitions)
        first = consumer.beginning_offsets(partitions)
        total = sum(consumer.end_offsets(partitions).values()) - sum(first.values())
        for tp, offset in first.items():
            consumer.seek(tp, offset)
        count = 0
        began = time.perf_counter()
        while count < total:
            for records in consumer.poll(timeout_ms=1000).values():
                count += len(records)
        seconds = time.perf_counter() - began
    finally:
        consumer.close()
    return count, count / seconds


# -- D: the write floor ---------------------------------------------------------------------
def dump_projected_rows(database_url: str, directory: Path) -> dict[str, int]:
    """The rows the worker wrote into its tables, as COPY text files (rows per table)."""
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            schema = views.active_schema(conn)
        raw = engine.raw_connection()
        counts = {}
        try:
            cursor = raw.cursor()
            for table in PROJECTED_TABLES:
                with open(directory / f"{table}.copy", "wb") as file:
                    cursor.copy_expert(f'COPY "{schema}"."{table}" TO STDOUT', file)
                counts[table] = cursor.rowcount
        finally:
            raw.close()
    finally:
        engine.dispose()
    return counts


def copy_rows(database_url: str, directory: Path) -> float:
    """D: COPY the dumped rows into fresh tables of the same shape (keys and indexes
    included), all in one transaction; seconds from the first COPY to the commit."""
    schema = "write_floor"
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            build_tables(schema).metadata.create_all(conn)
        raw = engine.raw_connection()
        try:
            cursor = raw.cursor()
            began = time.perf_counter()
            for table in PROJECTED_TABLES:
                with open(directory / f"{table}.copy", "rb") as file:
                    cursor.copy_expert(
                        f'COPY "{schema}"."{table}" FROM STDIN', file, size=_COPY_CHUNK
                    )
            raw.commit()
            return time.perf_counter() - began
        finally:
            raw.close()
    finally:
        engine.dispose()


# -- G: replay ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReplayRun:
    records: int
    seconds: float  # the whole build: schema, replay, index build, status
    replay_seconds: float  # the replay loop alone
    jobs: int  # replay processes

    @property
    def rate(self) -> float:
        return self.records / self.seconds


def replay(database_url: str, bootstrap: str, topic: str, *, jobs: int | None = None) -> ReplayRun:
    """G: Rebuilder.build of version 1 from offset 0 into an empty database, indexes
    built after the load as `rapport replay` does (one process per core unless `jobs`
    says otherwise); scores are not refreshed."""
    engine = make_engine(database_url)
    try:
        rebuilder = Rebuilder(PostgresVersions(engine), bootstrap, topic, jobs=jobs)
        began = time.perf_counter()
        stats = rebuilder.build(1)
        seconds = time.perf_counter() - began
    finally:
        engine.dispose()
    return ReplayRun(stats.records, seconds, stats.seconds, rebuilder.jobs)


# -- H: queries -----------------------------------------------------------------------------
QUERY_NAMES = ("timeline", "profile", "scores", "scores_historic", "top100", "contact_policy")


class QueryBench:
    """The analyst queries (projections.queries, as the HTTP API and CLI run them), each
    on a pooled connection checked out per query, timed around the call."""

    def __init__(
        self, database_url: str, customer: str, as_of: datetime, historic_as_of: datetime
    ) -> None:
        self.engine = make_engine(database_url, pool_size=2)
        self.customer = customer
        self.as_of = as_of
        self.historic_as_of = historic_as_of  # before the customer's last event: the ledger
        # As `rapport api` does at start-up: long-lived objects out of the collector's scans.
        gc.collect()
        gc.freeze()
        self.cursors = self._page_cursors()
        self._turn = 0

    def _page_cursors(self) -> list[str | None]:
        """A cursor for every page of 50 of the customer's timeline: the samples read
        pages at every depth, not just the first."""
        cursors: list[str | None] = [None]
        with self.engine.connect() as conn:
            while True:
                page = queries.customer_timeline(conn, self.customer, cursor=cursors[-1])
                if page.next_cursor is None:
                    return cursors
                cursors.append(page.next_cursor)

    def run(self, name: str) -> float:
        began = time.perf_counter()
        with self.engine.connect() as conn:
            if name == "timeline":
                self._turn += 1
                cursor = self.cursors[self._turn % len(self.cursors)]
                rows = queries.customer_timeline(conn, self.customer, cursor=cursor).rows
                if not rows:
                    raise BenchError(f"timeline page of {self.customer} came back empty")
            elif name == "profile":
                queries.customer_profile(conn, self.customer)
            elif name == "scores":
                queries.customer_scores(conn, self.customer, as_of=self.as_of)
            elif name == "scores_historic":
                queries.customer_scores(conn, self.customer, as_of=self.historic_as_of)
            elif name == "top100" and not queries.top_customers(conn, by="clv", n=100):
                raise BenchError("top customers came back empty: were scores refreshed?")
            elif name == "contact_policy":
                self._turn += 1
                contact_decision(
                    conn,
                    self.customer,
                    channel=("email", "call_center", "sales")[self._turn % 3],
                    purpose="marketing",
                    topic="spring-sale",
                    at=self.as_of,
                )
        return time.perf_counter() - began

    def sample(
        self, samples: int, budget_s: float, stop: Callable[[], bool] = lambda: False
    ) -> dict[str, list[float]]:
        """Round-robin over the queries until each has `samples` timings or has used its
        `budget_s` (at least 3 each), or `stop()` says so."""
        timings: dict[str, list[float]] = {name: [] for name in QUERY_NAMES}
        spent = dict.fromkeys(QUERY_NAMES, 0.0)

        def wanted(name: str) -> bool:
            n = len(timings[name])
            return n < 3 or (n < samples and spent[name] < budget_s)

        while any(wanted(n) for n in QUERY_NAMES) and not stop():
            for name in QUERY_NAMES:
                if wanted(name):
                    seconds = self.run(name)
                    timings[name].append(seconds)
                    spent[name] += seconds
        return timings

    def close(self) -> None:
        self.engine.dispose()


def summarize_queries(timings: dict[str, list[float]]) -> dict[str, dict[str, float | int]]:
    return {name: latency_ms(values) for name, values in timings.items() if values}


def refresh_all_scores(database_url: str, as_of: datetime) -> tuple[int, float]:
    """`rapport refresh-scores`: (customers scored, seconds)."""
    engine = make_engine(database_url)
    try:
        began = time.perf_counter()
        customers = score_population(engine, None, as_of=as_of)
        return customers, time.perf_counter() - began
    finally:
        engine.dispose()


def identity_counts(database_url: str) -> dict[str, int]:
    """How the identity graph resolved the workload: customers (known by a customer id),
    visitors (never identified), and identifiers shared by too many customers."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            row = conn.execute(
                sa.text(
                    """SELECT count(*) FILTER (WHERE is_customer) AS customers,
                              count(*) FILTER (WHERE NOT is_customer) AS visitors,
                              sum(blocked) AS blocked, sum(keys) AS keys
                         FROM (SELECT n.customer_id,
                                      bool_or(n.identifier LIKE 'customer:%') AS is_customer,
                                      count(*) FILTER (WHERE n.blocked_customers IS NOT NULL)
                                        AS blocked,
                                      count(k.key) AS keys
                                 FROM rapport.identities n
                                 LEFT JOIN rapport.identity_keys k ON k.node = n.identifier
                                GROUP BY n.customer_id) c"""
                )
            ).one()
        return {name: int(value or 0) for name, value in row._mapping.items()}
    finally:
        engine.dispose()


class BackgroundQueries(threading.Thread):
    """H under load: QueryBench.sample in a thread while a worker drains."""

    def __init__(self, bench: QueryBench, samples: int, budget_s: float) -> None:
        super().__init__(daemon=True, name="queries-under-load")
        self.bench = bench
        self.samples = samples
        self.budget_s = budget_s
        self.halt = threading.Event()
        self.timings: dict[str, list[float]] = {}
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.timings = self.bench.sample(self.samples, self.budget_s, self.halt.is_set)
        except BaseException as exc:
            self.error = exc

    def finish(self) -> dict[str, list[float]]:
        self.halt.set()
        self.join()
        if self.error is not None:
            raise BenchError(f"query under load failed: {self.error}") from self.error
        return self.timings


# -- F: freshness ---------------------------------------------------------------------------
class VisibilityPoller(threading.Thread):
    """Finds when probe events become visible: every `interval_s` it asks the timeline
    for the pending probes by primary key (a few dozen ids), and takes the start of the
    first query whose snapshot has a row as the moment it was visible (an upper bound,
    within one poll of the commit). Freshness = that moment - the row's received_at,
    which the SDK stamped when `publish` was called (same clock: same process)."""

    def __init__(self, database_url: str, interval_s: float = 0.01) -> None:
        super().__init__(daemon=True, name="visibility-poller")
        self.database_url = database_url
        self.interval_s = interval_s
        self.freshness_s: list[float] = []
        self.pending: set[str] = set()
        self.lock = threading.Lock()
        self.halt = threading.Event()
        self.error: BaseException | None = None

    def unseen(self) -> int:
        with self.lock:
            return len(self.pending)

    def watch(self, event_id: uuid.UUID) -> None:
        with self.lock:
            self.pending.add(str(event_id))

    def run(self) -> None:
        engine = sa.create_engine(self.database_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                schema = views.active_schema(conn)
                sql = sa.text(
                    f'SELECT event_id, received_at FROM "{schema}".timeline '
                    "WHERE event_id = ANY(CAST(:ids AS uuid[]))"
                )
                while not self.halt.is_set():
                    with self.lock:
                        ids = list(self.pending)
                    if ids:
                        asked = time.time()
                        seen = conn.execute(sql, {"ids": ids}).all()
                        with self.lock:
                            for event_id, received_at in seen:
                                self.pending.discard(str(event_id))
                                self.freshness_s.append(asked - received_at.timestamp())
                    time.sleep(self.interval_s)
        except BaseException as exc:
            self.error = exc
        finally:
            engine.dispose()

    def wait_all(self, timeout_s: float) -> int:
        """Wait until every probe was seen (or the timeout); the number still unseen."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.error is None and self.unseen():
            time.sleep(0.05)
        self.halt.set()
        self.join()
        if self.error is not None:
            raise BenchError(f"visibility poller failed: {self.error}") from self.error
        return self.unseen()


def freshness(
    settings: Settings,
    events: Sequence[Envelope],
    rate: float,
    log: Path,
    *,
    probes_per_s: float = 100.0,
) -> dict[str, Any]:
    """F: with the worker running and caught up, publish `events` with the SDK at `rate`
    (open loop: on schedule, whatever the worker does) and time ~`probes_per_s` of them
    from publish to visible in the timeline; sample the lag (published, not projected)."""
    projected = ProjectedCount(settings.db_url, settings.topic)
    poller = VisibilityPoller(settings.db_url)
    probe_every = max(1, round(rate / probes_per_s))
    lag: list[tuple[float, int]] = []
    try:
        with (
            WorkerProcess(settings, log) as worker,
            Publisher(settings.bootstrap, settings.topic) as publisher,
        ):
            warm = events[0]  # the worker has joined its group and caught up once this shows
            publisher.publish_and_wait(warm, timeout=30)
            poller.watch(warm.event_id)
            poller.start()
            deadline = time.monotonic() + 180
            while poller.unseen():
                worker.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError(f"the worker did not project a first event; see {log}")
                time.sleep(0.05)
            poller.freshness_s.clear()
            base = projected()
            began = time.perf_counter()
            next_lag = began
            for n, event in enumerate(events[1:]):
                now = time.perf_counter()
                ahead = began + n / rate - now
                if ahead > 0.001:
                    time.sleep(ahead)
                if n % probe_every == 0:
                    poller.watch(event.event_id)
                publisher.publish(event)
                if now >= next_lag:
                    lag.append((now - began, n - (projected() - base)))
                    next_lag = now + 0.05
            publisher.flush()
            seconds = time.perf_counter() - began
            unseen = poller.wait_all(timeout_s=60)
    finally:
        projected.close()
        if poller.is_alive():
            poller.halt.set()
            poller.join()
    published = len(events) - 1
    if not poller.freshness_s:
        raise BenchError("no probe event became visible: is the worker projecting?")
    return {
        **latency_ms(poller.freshness_s),
        "unseen_probes": unseen,
        "published": published,
        "target_rate": rate,
        "achieved_rate": published / seconds,
        "seconds": seconds,
        "lag": live_lag_summary(lag, rate),
    }
