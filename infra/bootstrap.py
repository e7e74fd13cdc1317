"""The composition root: turn Settings into the engines, publishers and workers others use."""

from __future__ import annotations

import sqlalchemy as sa

from infra import services
from infra.settings import Settings
from producers import Publisher
from projections.store import make_engine
from streams.worker import WorkerConfig


def require_services(settings: Settings) -> None:
    """Fail with one clear line if a service is unreachable; create missing topics."""
    services.require(settings)
    services.ensure_topics(settings)


def engine(settings: Settings) -> sa.Engine:
    services.require_database_only(settings)
    return make_engine(settings.db_url)


def publisher(settings: Settings) -> Publisher:
    return Publisher(settings.bootstrap, settings.topic)


def worker_config(settings: Settings, *, batch_size: int = 1000) -> WorkerConfig:
    return WorkerConfig(
        bootstrap=settings.bootstrap,
        database_url=settings.db_url,
        topic=settings.topic,
        dlq_topic=settings.dlq_topic,
        consumer_group=settings.consumer_group,
        data_dir=settings.state_dir / "worker",
        schema=settings.projection_schema,
        batch_size=batch_size,
    )
