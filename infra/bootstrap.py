"""The composition root: turn Settings into the engines, publishers and workers others use."""

from __future__ import annotations

import sqlalchemy as sa

from infra import services
from infra.settings import Settings
from producers import Publisher
from projections.engagement import EngagementParameters
from projections.scores import ScoreParameters
from projections.store import make_engine
from projections.value import RfmWeights
from streams.rebuild import Rebuilder
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


def score_parameters(settings: Settings) -> ScoreParameters:
    return ScoreParameters(
        default_margin_rate=settings.score_margin_rate,
        annual_rate=settings.score_annual_rate,
        horizon_years=settings.score_horizon_years,
        rfm_weights=RfmWeights(
            settings.score_rfm_weight_recency,
            settings.score_rfm_weight_frequency,
            settings.score_rfm_weight_monetary,
        ),
        engagement=EngagementParameters(half_life_days=settings.score_engagement_half_life_days),
    )


def rebuilder(settings: Settings, *, batch_size: int = 20_000) -> Rebuilder:
    return Rebuilder(
        engine(settings),
        settings.bootstrap,
        settings.topic,
        batch_size=batch_size,
        params=score_parameters(settings),
    )
