"""The stream worker's metrics: what it projected, how long batches take, how far behind
it is, and what it waits for.

Recorded once per batch from the batch's outcome (a few dozen counter updates, never per
record), and per partition every watchdog round (the lag). Retries and waits are read
from the worker's `Health` when scraped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from streams.health import Health
from streams.pipeline import BatchOutcome

PartitionKey = tuple[str, int]

# A batch of 1,000 records takes 0.1-0.5 s on a laptop; a database restart holds one for
# seconds to minutes (the whole wait is in the batch's time).
BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
TRANSACTION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)
OUTCOMES = ("projected", "duplicate", "redelivered", "parked")


class WorkerMetrics:
    def __init__(self, health: Health, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        # process_start_time_seconds and friends: a worker that keeps restarting shows.
        ProcessCollector(registry=r)
        self.events = Counter(
            "rapport_worker_events_projected",
            "New events folded into the projections, by event type (duplicates, redelivered "
            "and parked records are not: see rapport_worker_records_total).",
            ["type"],
            registry=r,
        )
        self.records = Counter(
            "rapport_worker_records",
            "Log records the worker is done with, by outcome: projected (new events), "
            "duplicate (event_id already projected), redelivered (below the stored "
            "position), parked (sent to the dead-letter topic).",
            ["outcome"],
            registry=r,
        )
        for outcome in OUTCOMES:  # each series exists from the start: a restarted worker
            self.records.labels(outcome)  # that stores nothing still shows 0, not nothing
        self.dead_letters = Counter(
            "rapport_worker_dead_letters",
            "Records this worker parked in the dead-letter topic, by the stage that refused "
            "them (unseal, decode, fold, database) and the error's type.",
            ["stage", "error_type"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "rapport_worker_batch_seconds",
            "Time to store (or park) every record of a batch, waits for PostgreSQL included.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.transaction_seconds = Histogram(
            "rapport_worker_transaction_seconds",
            "Time of each committed projection transaction.",
            buckets=TRANSACTION_BUCKETS,
            registry=r,
        )
        self.batch_records = Histogram(
            "rapport_worker_batch_records",
            "Records per batch.",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.lag = Gauge(
            "rapport_worker_lag_records",
            "Records in the log not yet projected, per partition assigned to this worker "
            "(the log's end offset minus the position stored in PostgreSQL).",
            ["topic", "partition"],
            registry=r,
        )
        self.lag_observed = Gauge(
            "rapport_worker_lag_observed_timestamp_seconds",
            "When the lag was last measured (Unix seconds); it is not measured while the "
            "worker waits for PostgreSQL.",
            registry=r,
        )
        self.last_received = Gauge(
            "rapport_worker_last_projected_received_timestamp_seconds",
            "Arrival time (received_at, Unix seconds) of the newest event this worker "
            "projected; 0 until it projects one.",
            registry=r,
        )
        self._newest_received: float | None = None
        freshness = Gauge(
            "rapport_worker_freshness_seconds",
            "Now minus the arrival time of the newest event this worker projected (NaN until "
            "it projects one). It also grows while no events arrive: alert on it together "
            "with the lag.",
            registry=r,
        )
        freshness.set_function(self._freshness)
        r.register(_HealthCollector(health))

    def observe_batch(self, outcome: BatchOutcome, seconds: float, records: int) -> None:
        self.batch_seconds.observe(seconds)
        self.batch_records.observe(records)
        for t in outcome.transaction_seconds:
            self.transaction_seconds.observe(t)
        for event_type, n in outcome.projected_by_type.items():
            self.events.labels(event_type).inc(n)
        for name in ("projected", "duplicates", "redelivered", "parked"):
            if n := getattr(outcome, name):
                self.records.labels(name.removesuffix("s")).inc(n)
        for (stage, error_type), n in outcome.parked_by_reason.items():
            self.dead_letters.labels(stage, error_type).inc(n)
        if outcome.newest_received is not None:
            self.observe_received(outcome.newest_received)

    def observe_received(self, at: datetime) -> None:
        stamp = at.timestamp()
        if self._newest_received is None or stamp > self._newest_received:
            self._newest_received = stamp
            self.last_received.set(stamp)

    def observe_lag(
        self,
        heads: Mapping[PartitionKey, int],
        positions: Mapping[PartitionKey, int],
        watched: Iterable[PartitionKey],
    ) -> None:
        """Lag of the partitions this worker owns now; a partition it lost is dropped, so
        the group's members sum to the topic's lag without counting one twice."""
        self.lag.clear()
        for key in sorted(watched):
            if key in heads:
                behind = max(0, heads[key] - positions.get(key, 0))
                self.lag.labels(key[0], str(key[1])).set(behind)
        self.lag_observed.set(time.time())

    def observe_positions(
        self, heads: Mapping[PartitionKey, int | None], positions: Mapping[PartitionKey, int]
    ) -> None:
        """After a batch: the lag of its partitions against the last head the consumer
        fetched (between two watchdog rounds, which measure every owned partition)."""
        for key, position in positions.items():
            head = heads.get(key)
            if head is not None:
                self.lag.labels(key[0], str(key[1])).set(max(0, head - position))

    def _freshness(self) -> float:
        if self._newest_received is None:
            return math.nan  # unknown, not fresh
        return max(0.0, time.time() - self._newest_received)


class _HealthCollector(Collector):
    """Waits and retries, read from the worker's Health when scraped."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        h = self.health
        retries = CounterMetricFamily(
            "rapport_worker_retries",
            "Attempts retried because a dependency did not answer or refused for a while "
            "(PostgreSQL restarting, Kafka, the dead-letter topic), by dependency.",
            labels=["dependency"],
        )
        for dependency, n in sorted(h.retries_by_dependency.items()):
            retries.add_metric([dependency], n)
        yield retries
        yield GaugeMetricFamily(
            "rapport_worker_waiting",
            "1 while the worker waits for a dependency before it can go on, else 0.",
            value=1 if h.is_waiting else 0,
        )
        yield GaugeMetricFamily(
            "rapport_worker_seconds_since_progress",
            "Seconds since the worker last stored a batch or parked a record.",
            value=h.seconds_since_progress(),
        )
        yield GaugeMetricFamily(
            "rapport_worker_ready",
            "1 when the worker has joined its group and waits for nothing (GET /readyz).",
            value=1 if h.ready else 0,
        )
