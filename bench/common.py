"""What every benchmark needs: settings with a dedicated topic (and database), removed after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from kafka.admin import KafkaAdminClient

from infra.services import ensure_topics
from infra.settings import Settings


@contextmanager
def bench_settings(name: str, *, partitions: int = 6, database: bool = False) -> Iterator[Settings]:
    """Settings from RAPPORT_* with a fresh topic (and database) for this run only."""
    base = Settings()
    suffix = f"{name}.{uuid.uuid4().hex[:8]}"
    db_url = base.db_url
    admin_url = base.db_url
    db_name = f"bench_{suffix.replace('.', '_')}"
    if database:
        with sa.create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{db_name}"'))
        db_url = sa.make_url(admin_url).set(database=db_name).render_as_string(False)
    settings = base.model_copy(
        update={
            "topic": f"bench.{suffix}",
            "dlq_topic": f"bench.{suffix}.dlq",
            "topic_partitions": partitions,
            "database_url": db_url,
        }
    )
    ensure_topics(settings)
    try:
        yield settings
    finally:
        admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap)
        try:
            admin.delete_topics([settings.topic, settings.dlq_topic])
        finally:
            admin.close()
        if database:
            with sa.create_engine(admin_url, isolation_level="AUTOCOMMIT").connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)'))
