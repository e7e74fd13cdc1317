"""Real Kafka and PostgreSQL for the integration and e2e tiers.

Where they come from, in order: RAPPORT_KAFKA_BOOTSTRAP / RAPPORT_DATABASE_URL when set;
testcontainers when a Docker engine answers; otherwise the local infrastructure (`infra/`),
on ports of its own so a developer's running `rapport infra up` is left alone. Whatever the
session started, it stops. Each test gets its own topics, consumer group and database.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from infra.settings import Settings

TEST_STATE_DIR = Path(os.environ.get("RAPPORT_TEST_STATE_DIR", "/tmp/rapport-test-state"))


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


class ServiceControl:
    """Stop and start the session's own Kafka broker and PostgreSQL, for fault tests."""

    def __init__(self, settings: Settings) -> None:
        from infra.kafka import LocalKafka
        from infra.postgres import LocalPostgres

        self.settings = settings
        self.kafka = LocalKafka(settings)
        self.postgres = LocalPostgres(settings)

    def restart_postgres(self, down_s: float = 1.0) -> None:
        """A fast stop (every session is cut off), then a start."""
        self.postgres.stop()
        time.sleep(down_s)
        self.postgres.start()

    def stop_kafka(self) -> None:
        self.kafka.stop()

    def start_kafka(self) -> None:
        self.kafka.start()


_CONTROL: list[ServiceControl] = []


def local_services(why: str = "fault tests need") -> ServiceControl:
    """The session's own local services; skips the test where they are external."""
    if not _CONTROL:
        pytest.skip(f"{why} the local services the session starts (not external)")
    return _CONTROL[0]


@pytest.fixture
def services() -> ServiceControl:
    """The session's services, to stop and start; skips where they are not ours to stop."""
    return local_services()


@pytest.fixture(scope="session")
def service_urls() -> Iterator[tuple[str, str]]:
    """(kafka bootstrap, PostgreSQL admin URL) of real, running services."""
    kafka = os.environ.get("RAPPORT_KAFKA_BOOTSTRAP")
    database = os.environ.get("RAPPORT_DATABASE_URL")
    if kafka and database:
        yield kafka, database
        return
    if _docker_available():
        from testcontainers.kafka import KafkaContainer
        from testcontainers.postgres import PostgresContainer

        with (
            KafkaContainer("apache/kafka:4.1.2").with_kraft() as k,
            PostgresContainer("postgres:18", driver="psycopg2") as pg,
        ):
            yield kafka or k.get_bootstrap_server(), database or pg.get_connection_url()
        return

    from infra import services

    settings = Settings(
        kafka_bootstrap=kafka,
        database_url=database,
        state_dir=TEST_STATE_DIR,
        kafka_port=29092,
        kafka_controller_port=29093,
        postgres_port=25432,
    )
    started = services.up(settings)
    if settings.local_kafka and settings.local_postgres:  # on the test ports: ours to stop
        _CONTROL.append(ServiceControl(settings))
    try:
        yield settings.bootstrap, settings.db_url
    finally:
        _CONTROL.clear()
        services.down(settings, only=started)


@pytest.fixture
def rapport_settings(service_urls: tuple[str, str], tmp_path: Path) -> Iterator[Settings]:
    """Settings for one test: fresh topics, consumer group and database on the real services,
    all removed after it."""
    from infra.scratch import Scratch

    bootstrap, admin_url = service_urls
    base = Settings(kafka_bootstrap=bootstrap, database_url=admin_url, topic_partitions=3)
    with closing(Scratch(base, tmp_path, prefix="test")) as scratch:
        yield scratch.settings(scratch.topic("touchpoints"), scratch.database("rapport"), "state")
