"""Test helpers: run the real worker as a user would, and wait for conditions (no sleeps)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from infra.in_process_server import free_port, serving
from infra.settings import Settings
from infra.worker_process import WorkerProcess, child_env

T = TypeVar("T")


def rapport(
    settings: Settings, *args: str, timeout: float = 120, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run the `rapport` command line in a child process."""
    return subprocess.run(
        [sys.executable, "-m", "infra.cli", *args],
        env=child_env(settings, **extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def running_worker(
    settings: Settings, *args: str, log: Path | None = None, processes: int = 1
) -> Iterator[subprocess.Popen[bytes]]:
    """The real `rapport worker` (a group of `processes` members in one consumer group),
    stopped (SIGTERM) on exit unless the test killed it."""
    log = log or settings.state_dir / f"worker-{time.monotonic_ns()}.log"
    with WorkerProcess(settings, log, "--processes", str(processes), *args) as worker:
        yield worker.process


def wait_for(
    probe: Callable[[], T | None],
    *,
    timeout: float = 60,
    what: str = "condition",
    interval: float = 0.1,
) -> T:
    """Poll `probe` until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {value!r})")
        time.sleep(interval)


def scrape(url: str) -> dict[tuple[str, tuple[str, ...]], float]:
    """A Prometheus /metrics page, as `samples` reads it."""
    import httpx

    response = httpx.get(url, timeout=5)
    response.raise_for_status()
    return samples(response.text)


def samples(exposition: str) -> dict[tuple[str, tuple[str, ...]], float]:
    """Prometheus' text format as {(sample name, label values): value}, the values in the
    alphabetical order of their labels' names."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, tuple(v for _, v in sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


@contextmanager
def running_collector(settings: Settings, **extra_env: str) -> Iterator[str]:
    """The real `rapport collector` on a free port; yields its base URL once it answers."""
    import httpx

    port = free_port()
    log = settings.state_dir / f"collector-{port}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "infra.cli", "collector", "--port", str(port)],
            env=child_env(settings, **extra_env),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"collector exited {process.returncode}: {log.read_text()}")
        try:
            return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(answers, timeout=60, what="collector to answer /healthz")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def consume(
    settings: Settings, count: int, *, timeout: float = 30, opened: bool = True
) -> list[tuple[bytes, dict]]:
    """The first `count` records of the touchpoint topic as (key, decoded JSON), their
    sealed personal fields opened as the worker opens them (`opened=False`: as stored)."""
    import orjson
    from kafka import KafkaConsumer

    from infra.bootstrap import unsealers

    consumer = KafkaConsumer(
        settings.topic,
        bootstrap_servers=settings.bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=500,
    )
    records: list[tuple[bytes, dict]] = []
    try:
        unsealer = unsealers(settings)() if opened else None

        def value_of(raw: bytes) -> dict:
            if unsealer is None:
                return orjson.loads(raw)
            (value,) = unsealer.open_all([raw])
            assert isinstance(value, bytes), value
            return orjson.loads(value)

        def enough() -> bool:
            records.extend((m.key, value_of(m.value)) for m in consumer)
            return len(records) >= count

        wait_for(enough, timeout=timeout, interval=0, what=f"{count} records in {settings.topic}")
    finally:
        consumer.close()
    return records


def topic_size(settings: Settings) -> int:
    """How many records the touchpoint topic holds (sum of end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap)
    try:
        partitions = [
            TopicPartition(settings.topic, p) for p in consumer.partitions_for_topic(settings.topic)
        ]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


TEST_PSEUDONYM_SECRET = "test-pseudonym-secret"


@dataclass
class ReadApi:
    """The read API served on a free port, with one client per role (and one without a
    key); each client's key was made for this API in its database."""

    base: str
    keys: Any  # readapi.keys.PostgresApiKeys
    agent: httpx.Client
    analyst: httpx.Client
    admin: httpx.Client
    anonymous: httpx.Client

    def client(self, key: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )


def pseudonym_settings() -> Settings:
    return Settings(pseudonym_secret=TEST_PSEUDONYM_SECRET)


@contextmanager
def serving_api(engine: Any, **options: Any) -> Iterator[ReadApi]:
    """`readapi.app.create_app(engine, **options)` as `rapport api` builds it (keys checked
    in PostgreSQL, the test pseudonym secret), served; yields its clients by role."""
    import uuid

    from infra.bootstrap import pseudonymizer
    from projections.postgres.roles import set_pseudonym_key
    from readapi.app import create_app
    from readapi.keys import PostgresApiKeys, Role

    store = PostgresApiKeys(engine)
    store.create_schema()
    with engine.begin() as conn:
        set_pseudonym_key(conn, TEST_PSEUDONYM_SECRET.encode())
    app = create_app(engine, keys=store, pseudonym=pseudonymizer(pseudonym_settings()), **options)
    with serving(app) as base:
        api = ReadApi(base, store, *(None,) * 4)  # type: ignore[arg-type]
        for role in Role:
            key = store.add(f"test-{role.value}-{uuid.uuid4().hex[:8]}", role)
            setattr(api, role.value, api.client(key))
        api.anonymous = httpx.Client(base_url=base, timeout=60)
        try:
            yield api
        finally:
            for client in (api.agent, api.analyst, api.admin, api.anonymous):
                client.close()
