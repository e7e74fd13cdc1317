"""The faust worker: consume touchpoints in batches, project each batch in one transaction.

Commit order, per batch: (1) decode and validate each record; park failures in the
dead-letter topic and wait for Kafka's ack; (2) write rows + positions in one PostgreSQL
transaction; (3) ack the events, after which faust commits their offsets. A crash before
(2) commits redelivers the batch; the stored positions and event_ids make that a no-op.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faust

from projections.store import PositionedEvent, ProjectionStore, make_engine
from schemas import decode_event
from schemas.errors import ContractError
from streams.deadletter import dead_letter

log = logging.getLogger("rapport.worker")


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    database_url: str
    topic: str
    dlq_topic: str
    consumer_group: str
    data_dir: Path
    schema: str | None = None  # None: follow the active projection version
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
        # Room for a few batches in flight: with faust's default (4096) a batch larger than
        # the buffer stalls the stream until the store has written the previous one.
        stream_buffer_maxsize=max(4096, 4 * config.batch_size),
        broker_heartbeat_interval=config.session_timeout_s / 4,
    )
    topic = app.topic(
        config.topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    store = ProjectionStore(make_engine(config.database_url, pool_size=2), config.schema)

    @app.on_partitions_assigned.connect
    async def _log_assignment(app: faust.App, assigned: set[Any], **_: Any) -> None:
        names = sorted(f"{tp.topic}/{tp.partition}" for tp in assigned if tp.topic == config.topic)
        log.info("assigned partitions: %s", ",".join(names) or "(none)")

    @app.agent(topic, name="project-touchpoints")
    async def project(stream: faust.Stream[bytes]) -> None:
        async for events in stream.take_events(config.batch_size, within=config.batch_seconds):
            done = await asyncio.to_thread(
                store.positions, {(e.message.topic, e.message.partition) for e in events}
            )
            batch = []
            for event in events:
                message = event.message
                if message.offset < done.get((message.topic, message.partition), 0):
                    continue  # redelivered after a crash: already projected (or parked)
                try:
                    decoded = decode_event(message.value)
                except ContractError as exc:
                    await _park(app, config.dlq_topic, message, exc)
                    decoded = None
                batch.append(
                    PositionedEvent(message.topic, message.partition, message.offset, decoded)
                )
            result = await asyncio.to_thread(store.apply_batch, batch)
            log.info(
                "projected %d new events (%d duplicate event_ids, %d redelivered records)",
                result.projected,
                result.duplicates,
                result.redelivered,
            )

    return app


async def _park(
    app: faust.App, dlq_topic: str, message: faust.types.Message, exc: Exception
) -> None:
    """Send a failed record to the dead-letter topic and wait until Kafka has it."""
    parked = dead_letter(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=list(message.headers or ()),
        error=exc,
    )
    log.warning(
        "parked %s/%d/%d in %s: %s",
        message.topic,
        message.partition,
        message.offset,
        dlq_topic,
        exc,
    )
    await app.producer.send_and_wait(
        dlq_topic, parked.key, parked.value, partition=None, timestamp=None, headers=parked.headers
    )


def run_worker(config: WorkerConfig, *, loglevel: str = "warn") -> None:
    from projections.store import create_schema

    engine = make_engine(config.database_url)
    create_schema(engine, config.schema)
    engine.dispose()
    config.data_dir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    app = build_app(config)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
