"""What an operator sees of a real run: the worker's /metrics move while it drains, and
`rapport status` shows lag while no worker runs and none once one has drained it."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from kafka import KafkaProducer

from infra.settings import Settings
from producers.simulator import simulate
from schemas import Envelope
from tests.integration.accounting import publish_sealed, wait_drained
from tests.support import free_port, rapport, running_worker, scrape, wait_for

pytestmark = pytest.mark.integration


def _simulated(count: int, seed: int) -> list[Envelope]:
    return list(itertools.islice(simulate(customers=2_000, seed=seed), count))


def _status(settings: Settings) -> tuple[int, dict]:
    """`rapport status --json` as an operator runs it: (exit status, the document)."""
    done = rapport(settings, "status", "--json", timeout=60)
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


def _service(status: dict, name: str) -> dict:
    return next(s for s in status["services"] if s["name"] == name)


@contextmanager
def _worker(settings: Settings, port: int, log: Path | None = None) -> Iterator[None]:
    with running_worker(
        settings.model_copy(update={"worker_health_port": port}),
        "--batch-size",
        "250",
        "--loglevel",
        "info",
        log=log,
    ):
        wait_for(
            lambda: _ready(port),
            timeout=60,
            what="the worker's /readyz to answer 200",
        )
        yield


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _lag(metrics: dict) -> float | None:
    lags = [v for (name, _), v in metrics.items() if name == "rapport_worker_lag_records"]
    return sum(lags) if lags else None


def _projected(metrics: dict) -> float:
    return metrics.get(("rapport_worker_records_total", ("projected",)), 0.0)


def test_metrics_move_and_status_shows_lag_until_a_worker_drains_it(
    rapport_settings: Settings,
) -> None:
    s = rapport_settings
    first = publish_sealed(s, _simulated(30_000, seed=41))

    # No worker: every record waits, and status says so (and exits 1 for scripts).
    code, status = _status(s)
    assert code == 1
    assert status["lag"] == len(first)
    assert sum(p["lag"] for p in status["partitions"]) == len(first)
    assert _service(status, "worker")["state"] == "down"
    assert _service(status, "kafka")["state"] == "up"
    assert _service(status, "postgres")["state"] == "up"

    port = free_port()
    samples = []
    with _worker(s, port):
        url = f"http://127.0.0.1:{port}/metrics"
        began = time.monotonic()
        while time.monotonic() - began < 180:
            metrics = scrape(url)
            samples.append((_projected(metrics), _lag(metrics)))
            if samples[-1] == (len(first), 0):
                break
            time.sleep(0.2)
        projected = [p for p, _ in samples]
        lags = [lag for _, lag in samples if lag is not None]
        # The counter moved in steps, batch by batch, up to every event published.
        assert projected[-1] == len(first), samples[-5:]
        assert len(set(projected)) >= 3 and projected == sorted(projected)
        # The lag was seen above zero and fell to zero.
        assert max(lags) > 0 and lags[-1] == 0, lags
        assert metrics[("rapport_worker_batch_seconds_count", ())] >= len(first) / 250
        assert metrics[("rapport_worker_transaction_seconds_count", ())] >= len(first) / 250
        by_type = {
            labels[0]: n
            for (name, labels), n in metrics.items()
            if name == "rapport_worker_events_projected_total"
        }
        assert sum(by_type.values()) == len(first)
        assert "commerce.purchased" in by_type and "call_center.call" in by_type
        assert 0 <= metrics[("rapport_worker_freshness_seconds", ())] < 600

        code, status = _status(s)
        assert code == 0, status
        assert status["lag"] == 0 and status["dead_letters"]["total"] == 0
        assert status["active_version"] == "core_v1"
        assert status["freshness_s"] is not None and status["freshness_s"] < 600
        (member,) = status["workers"]
        assert member["partitions"] == list(range(s.topic_partitions)) and member["ready"]

    # The worker stopped: what arrives meanwhile is lag, and status names it; one record
    # is not an event at all.
    later = publish_sealed(s, _simulated(31_000, seed=41)[30_000:])
    producer = KafkaProducer(bootstrap_servers=s.bootstrap, acks="all")
    producer.send(s.topic, key=b"cust-poison", value=b"not json")
    producer.close()
    code, status = _status(s)
    assert code == 1 and status["lag"] == len(later) + 1
    assert _service(status, "worker")["state"] == "down"

    # For a log shipper: the same worker, logging one JSON object per line.
    log = s.state_dir / "worker-json.log"
    with _worker(s.model_copy(update={"log_format": "json"}), free_port(), log):
        wait_drained(s)
        code, status = _status(s)
    assert code == 0 and status["lag"] == 0
    parked = status["dead_letters"]
    assert parked["total"] == 1 and parked["by_reason"] == {"decode: DecodeError": 1}
    assert parked["latest"][0]["stage"] == "decode"
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    assert any(
        line["logger"] == "rapport.worker" and line["message"].startswith("projected")
        for line in lines
    ), lines[-5:]


def test_the_operator_page_shows_the_status_of_the_running_services(
    rapport_settings: Settings,
) -> None:
    """The read API as `rapport api` builds it: its /ui/operations page is `rapport
    status`, here with records waiting and no worker."""
    from infra import bootstrap
    from readapi.keys import Role
    from readapi.pages import COOKIE
    from tests.support import serving

    s = rapport_settings
    publish_sealed(s, _simulated(500, seed=43))
    with _worker(s, free_port()):
        wait_drained(s)
    later = publish_sealed(s, _simulated(700, seed=43)[500:])
    key = bootstrap.api_keys(s).add("operator", Role.ANALYST)
    with serving(bootstrap.read_api_app(s)) as base:
        page = httpx.get(f"{base}/ui/operations", cookies={COOKIE: key}, timeout=30)
        assert httpx.get(f"{base}/readyz").status_code == 200
    assert page.status_code == 200, page.text
    assert f"{len(later)} records" in page.text  # the total lag
    assert "core_v1" in page.text and "No worker in the group." in page.text
