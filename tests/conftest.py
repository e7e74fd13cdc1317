"""Real Kafka and PostgreSQL for the integration and e2e tiers.

Where they come from, in order: RAPPORT_KAFKA_BOOTSTRAP / RAPPORT_DATABASE_URL when set;
testcontainers when a Docker engine answers; otherwise the local infrastructure (`infra/`),
on ports of its own so a developer's running `rapport infra up` is left alone. Whatever the
session started, it stops. Each test gets its own topics, consumer group and database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from infra.settings import Settings

TEST_STATE_DIR = Path(os.environ.get("RAPPORT_TEST_STATE_DIR", "/tmp/rapport-test-state"))


def _docker_available() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


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
    try:
        yield settings.bootstrap, settings.db_url
    finally:
        services.down(settings, only=started)


@pytest.fixture
def rapport_settings(service_urls: tuple[str, str], tmp_path: Path) -> Iterator[Settings]:
    """Settings for one test: fresh topics, consumer group and database on the real services."""
    bootstrap, admin_url = service_urls
    suffix = uuid.uuid4().hex[:10]
    database = f"rapport_test_{suffix}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{database}"'))
    settings = Settings(
        kafka_bootstrap=bootstrap,
        database_url=sa.make_url(admin_url).set(database=database).render_as_string(False),
        state_dir=tmp_path / "state",
        topic=f"rapport.touchpoints.{suffix}",
        dlq_topic=f"rapport.touchpoints.{suffix}.dlq",
        consumer_group=f"rapport-worker-{suffix}",
        topic_partitions=3,
    )
    from infra.services import ensure_topics

    ensure_topics(settings)
    yield settings
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()
