"""The faust worker: consume touchpoints in batches, project each batch in one transaction.

Commit order, per batch: (1) decode; (2) write rows + positions in one PostgreSQL
transaction; (3) ack the events, after which faust commits their offsets. A crash between
(2) and (3) redelivers the batch; the stored positions make that redelivery a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import faust
import sqlalchemy as sa

from projections.store import PositionedEvent, ProjectionStore, create_schema
from schemas import decode_event
from schemas.errors import ContractError

log = logging.getLogger("rapport.worker")


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    database_url: str
    topic: str
    dlq_topic: str
    consumer_group: str
    data_dir: Path
    batch_size: int = 1000
    batch_seconds: float = 0.2
    # A crashed worker's partitions move to the others after this long without a heartbeat.
    session_timeout_s: float = 10.0


def build_app(config: WorkerConfig) -> faust.App:
    app = faust.App(
        config.consumer_group,
        broker=f"kafka://{config.bootstrap}",
        store="memory://",
        datadir=str(config.data_dir),
        web_enabled=False,
        topic_disable_leader=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_commit_every=config.batch_size,
        broker_commit_interval=1.0,
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=config.session_timeout_s / 4,
    )
    topic = app.topic(
        config.topic, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    engine = sa.create_engine(config.database_url, pool_size=2, pool_pre_ping=True)
    store = ProjectionStore(engine, consumer=config.consumer_group)

    @app.agent(topic, name="project-touchpoints")
    async def project(stream: faust.Stream[bytes]) -> None:
        async for events in stream.take_events(config.batch_size, within=config.batch_seconds):
            batch = []
            for event in events:
                message = event.message
                try:
                    decoded = decode_event(message.value)
                except ContractError as exc:
                    log.error(
                        "undecodable record %s[%d]@%d: %s",
                        message.topic,
                        message.partition,
                        message.offset,
                        exc,
                    )
                    continue
                batch.append(
                    PositionedEvent(message.topic, message.partition, message.offset, decoded)
                )
            result = await asyncio.to_thread(store.apply_batch, batch)
            log.info(
                "projected %d events (%d redelivered, skipped)", result.projected, result.skipped
            )

    return app


def run_worker(config: WorkerConfig, *, loglevel: str = "warn") -> None:
    engine = sa.create_engine(config.database_url)
    create_schema(engine)
    engine.dispose()
    app = build_app(config)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
