"""Bring up what Rapport needs and remember what this process started, to stop only that."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from infra.kafka import LocalKafka, require_broker
from infra.postgres import LocalPostgres, require_database
from infra.settings import Settings

if TYPE_CHECKING:
    from kafka.admin import NewTopic


@dataclass
class Started:
    """What one `up` started, and how long each took to become ready."""

    kafka: bool = False
    postgres: bool = False
    seconds: dict[str, float] = field(default_factory=dict)


def up(settings: Settings) -> Started:
    """Start the local services that are configured and not running; a second call is a no-op."""
    started = Started()
    if settings.local_postgres:
        began = time.monotonic()
        started.postgres = LocalPostgres(settings).start()
        started.seconds["postgres"] = time.monotonic() - began
    if settings.local_kafka:
        began = time.monotonic()
        started.kafka = LocalKafka(settings).start()
        started.seconds["kafka"] = time.monotonic() - began
    ensure_topics(settings)
    return started


def down(settings: Settings, only: Started | None = None) -> list[str]:
    """Stop the local services (or only those `only` says were started); names what stopped."""
    stopped = []
    if settings.local_kafka and (only is None or only.kafka):
        # Without `only`: every local cluster, whatever its size (`up --brokers 3`, `down`).
        clusters = [LocalKafka(settings)] if only is not None else LocalKafka.on_disk(settings)
        stopped += [cluster.name for cluster in clusters if cluster.stop()]
    if (
        settings.local_postgres
        and (only is None or only.postgres)
        and LocalPostgres(settings).stop()
    ):
        stopped.append("postgres")
    return stopped


def require(settings: Settings) -> None:
    """One clear line, not a traceback, when a service is not reachable."""
    require_database(settings.db_url, local=settings.local_postgres)
    require_broker(settings.bootstrap, local=settings.local_kafka)


def new_topic(settings: Settings, name: str, configs: dict[str, str] | None = None) -> NewTopic:
    """A topic as Rapport makes them: the configured partitions, each on min(3, brokers)
    replicas; from three, a write (acks=all, as every producer here sends) waits for two, so
    one broker may stop without refusing writes or losing an acknowledged event."""
    from kafka.admin import NewTopic

    replicated = (
        {"min.insync.replicas": str(settings.min_insync_replicas)}
        if settings.topic_replication > 1
        else {}
    )
    return NewTopic(
        name,
        settings.topic_partitions,
        settings.topic_replication,
        topic_configs={**replicated, **(configs or {})},
    )


def ensure_topics(settings: Settings) -> None:
    """Create the touchpoint topic and its dead-letter topic with infinite retention."""
    from kafka.errors import TopicAlreadyExistsError

    from streams import kafka_clients

    require_broker(settings.bootstrap, local=settings.local_kafka)
    admin = kafka_clients.admin(settings.bootstrap, request_timeout_ms=30_000)
    try:
        existing = set(admin.list_topics())
        forever = {"retention.ms": "-1", "retention.bytes": "-1"}
        wanted = [
            new_topic(settings, name, forever)
            for name in (settings.topic, settings.dlq_topic)
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # another process raced us
                admin.create_topics(wanted)
    finally:
        admin.close()


def require_database_only(settings: Settings) -> None:
    require_database(settings.db_url, local=settings.local_postgres)
