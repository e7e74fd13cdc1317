"""The worker's metrics as a batch's outcome and the watchdog's rounds record them."""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

import orjson

from observability.exposition import scrape
from observability.logs import JsonFormatter
from observability.worker import WorkerMetrics
from streams.health import Health
from streams.pipeline import BatchOutcome
from tests.support import samples


def _samples(metrics: WorkerMetrics) -> dict[tuple[str, tuple[str, ...]], float]:
    return samples(scrape(metrics.registry).decode())


def test_a_batch_counts_events_by_type_records_by_outcome_and_parked_by_reason() -> None:
    metrics = WorkerMetrics(Health())
    # Every outcome's series exists before the first batch: a worker that keeps restarting
    # before it stores anything reads 0, which an alert's increase() can see.
    assert all(
        _samples(metrics)[("rapport_worker_records_total", (o,))] == 0
        for o in ("projected", "duplicate", "redelivered", "parked")
    )
    outcome = BatchOutcome(projected=3, duplicates=1, redelivered=5, parked=1)
    outcome.projected_by_type.update(["email.sent", "email.sent", "commerce.purchased", "x.y"])
    outcome.parked_by_reason[("decode", "ContractError")] += 1
    outcome.transaction_seconds += [0.02, 0.03]
    metrics.observe_batch(outcome, 0.1, 10)
    metrics.observe_batch(BatchOutcome(redelivered=2), 0.01, 2)
    got = _samples(metrics)
    assert got[("rapport_worker_events_projected_total", ("email.sent",))] == 2
    assert got[("rapport_worker_records_total", ("projected",))] == 3
    assert got[("rapport_worker_records_total", ("duplicate",))] == 1
    assert got[("rapport_worker_records_total", ("redelivered",))] == 7
    assert got[("rapport_worker_records_total", ("parked",))] == 1
    assert got[("rapport_worker_dead_letters_total", ("ContractError", "decode"))] == 1
    assert got[("rapport_worker_batch_seconds_count", ())] == 2
    assert got[("rapport_worker_transaction_seconds_count", ())] == 2
    assert got[("rapport_worker_batch_records_sum", ())] == 12


def test_lag_covers_only_the_partitions_this_worker_owns_now() -> None:
    metrics = WorkerMetrics(Health())
    heads = {("t", 0): 100, ("t", 1): 50, ("t", 2): 10}
    metrics.observe_lag(heads, {("t", 0): 40, ("t", 1): 50}, [("t", 0), ("t", 1)])
    lag = {k[1]: v for k, v in _samples(metrics).items() if k[0] == "rapport_worker_lag_records"}
    assert lag == {("0", "t"): 60, ("1", "t"): 0}  # (partition, topic)
    # After a rebalance took partition 0 away: another member reports it, not this one.
    metrics.observe_lag(heads, {("t", 2): 4}, [("t", 2)])
    lag = {k[1]: v for k, v in _samples(metrics).items() if k[0] == "rapport_worker_lag_records"}
    assert lag == {("2", "t"): 6}
    # A batch moves its partitions' lag between rounds; a head not fetched yet leaves it.
    metrics.observe_positions({("t", 2): 12, ("t", 3): None}, {("t", 2): 12, ("t", 3): 1})
    lag = {k[1]: v for k, v in _samples(metrics).items() if k[0] == "rapport_worker_lag_records"}
    assert lag == {("2", "t"): 0}


def test_freshness_follows_the_newest_arrival_never_an_older_one() -> None:
    metrics = WorkerMetrics(Health())
    # Nothing projected yet: unknown (NaN), never "perfectly fresh".
    assert math.isnan(_samples(metrics)[("rapport_worker_freshness_seconds", ())])
    now = datetime.now(UTC)
    metrics.observe_received(now - timedelta(seconds=30))
    metrics.observe_received(now - timedelta(seconds=300))  # a late record of a slow partition
    freshness = _samples(metrics)[("rapport_worker_freshness_seconds", ())]
    assert 30 <= freshness < 40
    stamp = _samples(metrics)[("rapport_worker_last_projected_received_timestamp_seconds", ())]
    assert stamp == (now - timedelta(seconds=30)).timestamp()


def test_waits_and_readiness_come_from_the_workers_health() -> None:
    health = Health()
    metrics = WorkerMetrics(health)
    assert _samples(metrics)[("rapport_worker_ready", ())] == 0  # not in a group yet
    health.assigned = True
    assert _samples(metrics)[("rapport_worker_ready", ())] == 1
    health.waiting("PostgreSQL", "the database system is shutting down", 0.1)
    health.waiting("PostgreSQL", "the database system is starting up", 0.2)
    got = _samples(metrics)
    assert got[("rapport_worker_retries_total", ("PostgreSQL",))] == 2
    assert got[("rapport_worker_waiting", ())] == 1 and got[("rapport_worker_ready", ())] == 0
    health.progressed(projected=10)
    assert _samples(metrics)[("rapport_worker_waiting", ())] == 0


def test_json_log_lines_carry_the_message_extras_and_the_traceback() -> None:
    try:
        raise ValueError("bad offset")
    except ValueError:
        record = logging.getLogger("rapport.worker").makeRecord(
            "rapport.worker",
            logging.ERROR,
            __file__,
            1,
            "exiting with code %d",
            (3,),
            exc_info=__import__("sys").exc_info(),
            extra={"partition": 4},
        )
    line = orjson.loads(JsonFormatter().format(record))
    assert line["message"] == "exiting with code 3"
    assert line["level"] == "error" and line["logger"] == "rapport.worker"
    assert line["partition"] == 4
    assert "ValueError: bad offset" in line["exception"]
    assert datetime.fromisoformat(line["time"]).tzinfo is not None
