"""The faust worker: consume touchpoints in batches, project each batch in one transaction.

faust runs the worker: the consumer group and its rebalances, the fetcher, timers, the web
server, start-up and shutdown. Records are taken from its consumer a fetch at a time
(`BatchConsumer`), not one message at a time through an agent's stream: per message, that
machinery (a task per message, the conductor, an Event, an ack) cost several times what
decoding the record does, on the one GIL the batches need.

Commit order, per batch: `BatchPipeline.run` stores or parks every record (waiting out a
database or dead-letter topic that does not answer, never skipping); only when it returns
are the batch's offsets committed to Kafka. Those are only a hint: on every partition
assignment the consumer seeks to the positions stored in PostgreSQL with the rows, and
every batch's transaction checks them again, so a crash, a restored database, a rebalance
or a batch fetched before one never skips or repeats a record.

Exit codes (for a supervisor, which should restart the worker on any of them):
  EXIT_STALLED   the watchdog saw lag not drain for `stall_timeout_s` while Kafka and
                 PostgreSQL answered and the worker was not waiting for a known reason;
  EXIT_BEHIND    the database is behind the log (restored from a backup, failed over):
                 the restart re-reads from the stored positions.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, cast

import faust
from aiokafka.structs import OffsetAndMetadata
from aiokafka.structs import TopicPartition as KafkaTopicPartition
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP

from observability.exposition import METRICS_MEDIA_TYPE, scrape
from observability.worker import WorkerMetrics
from projections.errors import PositionGap
from projections.store import ProjectionStore, next_offsets
from streams.deadletter import DeadLetterWriter
from streams.fetched import Fetched
from streams.health import Health
from streams.kafka_log import KafkaLog
from streams.pipeline import BatchPipeline, LogRecord, PipelineStopped, Prepared, Unsealer
from streams.population_process import ScorerProcess
from streams.watchdog import Watchdog

log = logging.getLogger("rapport.worker")

EXIT_STALLED = 3
EXIT_BEHIND = 4
WATCHDOG_EVERY_S = 5.0
# Batches' worth of records held ready while a batch is stored: the next ones are fetched
# meanwhile, and a slow database holds at most about this many in memory.
FETCHES_AHEAD = 4
COMMIT_TIMEOUT_S = 10.0  # an offset hint not committed by then is left to the next one
# How long an assignment waits for PostgreSQL to say where to start before it starts from
# Kafka's committed offsets (the first batch then checks them against PostgreSQL).
POSITIONS_ON_ASSIGNMENT_TIMEOUT_S = 30.0

PartitionKey = tuple[str, int]


@dataclass(frozen=True)
class WorkerConfig:
    bootstrap: str
    topic: str
    dlq_topic: str
    consumer_group: str
    data_dir: Path
    batch_size: int = 1000
    # A crashed worker's partitions move to the others after this long without a heartbeat.
    session_timeout_s: float = 10.0
    # Exit (EXIT_STALLED) when lag has not drained for this long; see the module docstring.
    stall_timeout_s: float = 120.0
    # Serve GET /healthz, /readyz and /metrics on health_host:health_port (faust's web
    # server); None: no HTTP server.
    health_port: int | None = None
    health_host: str = "127.0.0.1"


def build_app(
    config: WorkerConfig,
    store: ProjectionStore,
    dead_letters: DeadLetterWriter,
    kafka_log: KafkaLog,
    scorer: ScorerProcess | None = None,
    unsealer: Unsealer | None = None,
) -> faust.App:
    """The faust app of the worker, writing through `store` (built by the composition
    root: `infra.bootstrap.worker_app`), with the population scorer's process beside it
    (streams/population_process.py) when given one."""
    app = faust.App(
        config.consumer_group,
        broker=f"kafka://{config.bootstrap}",
        store="memory://",
        datadir=str(config.data_dir),
        web_enabled=config.health_port is not None,
        web_port=config.health_port or 6066,
        web_bind=config.health_host,
        topic_disable_leader=True,
        producer_acks=-1,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=config.session_timeout_s,
        broker_heartbeat_interval=config.session_timeout_s / 4,
    )
    topic = app.topic(
        config.topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
    )
    health = Health()
    metrics = WorkerMetrics(health)
    pipeline = BatchPipeline(store, dead_letters, kafka_log.log_starts, health, unsealer=unsealer)
    fetched = Fetched(limit=FETCHES_AHEAD * config.batch_size)
    # faust's types leave these untyped or too narrow: the casts stop at this boundary.
    cast(Any, app.transport).Consumer = _batch_consumer(config.topic, store.positions, fetched)
    # Subscribed without an agent: the consumer hands whole fetches to `_project` below.
    cast(Any, app.topics).add(topic)

    async def _log_assignment(app: faust.App, assigned: set[Any], **_: Any) -> None:
        names = sorted(f"{tp.topic}/{tp.partition}" for tp in assigned if tp.topic == config.topic)
        health.assigned = True
        log.info("assigned partitions: %s", ",".join(names) or "(none)")

    # Records fetched for a partition this worker has just lost stay in `fetched`: storing
    # them is harmless (each batch's transaction checks the positions, so the new owner's
    # copy or this one counts nothing twice), while dropping them without a seek after (a
    # partition assigned back is not sought again) would leave a gap.
    cast(Any, app.on_partitions_assigned).connect(_log_assignment)

    committing: asyncio.Future[None] | None = None

    async def _store(prepared: Prepared) -> None:
        nonlocal committing
        began = time.perf_counter()
        try:
            outcome = await asyncio.to_thread(pipeline.store, prepared)
        except PositionGap as gap:
            _exit(EXIT_BEHIND, f"the database is behind the log ({gap}); restart to re-read")
        metrics.observe_batch(outcome, time.perf_counter() - began, len(prepared.records))
        stored = next_offsets(prepared.records)
        metrics.observe_positions({key: _highwater(app, key) for key in stored}, stored)
        log.info(
            "projected %d new events (%d duplicate event_ids, %d redelivered records, %d parked)",
            outcome.projected,
            outcome.duplicates,
            outcome.redelivered,
            outcome.parked,
        )
        fetched.done(prepared.records)
        # Never awaited here: a commit can wait on the group (a rebalance under way) for
        # as long as it likes, and no batch may wait for a hint.
        if committing is None or committing.done():
            committing = asyncio.ensure_future(
                asyncio.wait_for(_commit_hint(app, fetched.next_offsets()), COMMIT_TIMEOUT_S)
            )
            committing.add_done_callback(_ignore_outcome)

    @app.task  # type: ignore[untyped-decorator]
    async def _project() -> None:
        """Batch after batch: the next one is opened and decoded while the one before it is
        being stored (the store waits on PostgreSQL, the GIL is free meanwhile); batches
        are stored one at a time, in order."""
        storing: asyncio.Future[None] | None = None
        try:
            while True:
                records = await fetched.take(config.batch_size)
                prepared = await asyncio.to_thread(pipeline.prepare, records)
                if storing is not None:
                    await storing
                storing = asyncio.ensure_future(_store(prepared))
        except PipelineStopped:
            pass  # shutting down while waiting: nothing was stored, nothing is committed
        finally:
            pipeline.stop.set()  # a batch still waiting in its thread gives up at once

    watchdog = Watchdog(config.stall_timeout_s)

    @app.timer(WATCHDOG_EVERY_S)  # type: ignore[untyped-decorator]
    async def _watch() -> None:
        if health.is_waiting:
            watchdog.excuse()
            return
        mine = {(tp.topic, tp.partition) for tp in app.consumer.assignment()}
        try:
            heads, positions = await asyncio.to_thread(_heads_and_positions, config.topic)
        except Exception:  # a service does not answer: that is not a stall, and the
            return  # pipeline waits for it (and says so) as soon as a batch needs it
        owned = {k for k in mine if k[0] == config.topic}
        metrics.observe_lag(heads, positions, owned)
        watched = owned or set(heads)
        if stalls := watchdog.observe(time.monotonic(), positions, heads, watched):
            _exit(
                EXIT_STALLED,
                "no progress while Kafka and PostgreSQL answer: "
                + ", ".join(
                    f"{s.partition[0]}/{s.partition[1]} at {s.position} of {s.head} "
                    f"for {s.seconds:.0f}s"
                    for s in stalls
                ),
            )

    def _heads_and_positions(
        topic: str,
    ) -> tuple[dict[PartitionKey, int], dict[PartitionKey, int]]:
        heads = kafka_log.ends(topic)
        return heads, store.positions(set(heads))

    if scorer is not None:

        @app.task  # type: ignore[untyped-decorator]
        async def _start_scorer() -> None:
            await asyncio.to_thread(scorer.start)

    if config.health_port is not None:

        @app.page("/healthz")
        async def healthz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
            """Alive: the event loop answers. A wait for PostgreSQL is not a reason to
            restart the worker (it resumes by itself), so it shows in /readyz only."""
            return web.json(health.snapshot(), status=200)

        @app.page("/readyz")
        async def readyz(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
            """Ready: joined the group and waiting for nothing (else 503, saying why)."""
            return web.json(health.snapshot(), status=200 if health.ready else 503)

        @app.page("/metrics")
        async def metrics_page(
            web: faust.web.View, request: faust.web.Request
        ) -> faust.web.Response:
            # aiohttp takes the charset apart from the content type.
            return web.text(scrape(metrics.registry).decode(), content_type=METRICS_MEDIA_TYPE)

    async def _release(app: faust.App, **_: Any) -> None:
        pipeline.stop.set()
        if scorer is not None:
            await asyncio.to_thread(scorer.close)
        await asyncio.to_thread(dead_letters.close)
        await asyncio.to_thread(kafka_log.close)
        await asyncio.to_thread(store.close)

    cast(Any, app.on_before_shutdown).connect(_release)

    return app


def _batch_consumer(
    topic: str,
    stored_positions: Callable[[set[PartitionKey]], Mapping[PartitionKey, int]],
    fetched: Fetched,
) -> type[AIOKafkaConsumer]:
    """faust's consumer, handing whole fetches of `topic` to `fetched` and seeking on every
    assignment to the positions PostgreSQL stores.

    faust calls `seek_to_committed` once partitions are assigned, before it resumes the
    flow of records, and keeps what it returns as the committed offsets of its own
    bookkeeping; so answering with the stored positions makes them the start, everywhere.
    """

    class BatchConsumer(AIOKafkaConsumer):
        async def _drain_messages(self, fetcher: Any) -> None:
            """faust's fetch loop, without its per-message dispatch: a fetch's records of
            the active partitions go to `fetched` as one list (waiting while it is full)."""
            service, fetcher_service = cast(Any, self), cast(Any, fetcher)
            while not (service._stopped.is_set() or fetcher_service._stopped.is_set()):
                if not self.flow_active:  # a rebalance: wait for it outside the lock,
                    await service.wait(self.can_resume_flow)  # which its seek needs
                    continue
                async with fetched.fetching:
                    if not self.flow_active or self.should_stop:
                        continue
                    records, active = await self._wait_next_records(1.0)
                    if not records:
                        continue
                    buffered = self._buffered_partitions
                    batch = [
                        LogRecord.of(record)
                        for tp, items in records.items()
                        if tp.topic == topic and (active is None or tp in active or tp in buffered)
                        for record in items
                    ]
                    if batch:
                        await fetched.put(batch)

        async def seek_to_committed(self) -> Mapping[Any, int]:
            committed = dict(await super().seek_to_committed())
            mine = {tp for tp in self.assignment() if tp.topic == topic}
            if not mine:
                return committed
            keys = {(tp.topic, tp.partition) for tp in mine}
            try:
                stored = await asyncio.wait_for(
                    asyncio.to_thread(_read_until_answered, stored_positions, keys),
                    POSITIONS_ON_ASSIGNMENT_TIMEOUT_S,
                )
            except Exception as exc:
                log.warning(
                    "could not read the stored positions (%r): starting from Kafka's "
                    "committed offsets; the first batch checks them against PostgreSQL",
                    exc,
                )
                return committed
            offsets = {tp: stored.get((tp.topic, tp.partition), 0) for tp in mine}
            async with fetched.fetching:  # no fetch in flight: its records would be stale
                await fetched.drop(keys)
                await self.seek_wait(offsets)
            log.info(
                "starting from the stored positions: %s",
                ", ".join(f"{tp.topic}/{tp.partition}@{o}" for tp, o in sorted(offsets.items())),
            )
            return {**committed, **offsets}

    return BatchConsumer


def _highwater(app: faust.App, key: PartitionKey) -> int | None:
    """The partition's end as of the consumer's last fetch (None: not fetched yet)."""
    try:
        head = app.consumer.highwater(TP(*key))
    except Exception:  # the partition moved to another member meanwhile
        return None
    return head if isinstance(head, int) else None


def _ignore_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and (exc := future.exception()) is not None:
        log.debug("offset commit gave up: %r", exc)


async def _commit_hint(app: faust.App, offsets: Mapping[PartitionKey, int]) -> None:
    """Commit the stored offsets to Kafka too, for the tools that read a group's lag there
    (this worker reads its positions from PostgreSQL). Only a hint: it is made in the
    consumer's own thread for the partitions assigned at that moment, and a refusal (a
    rebalance under way) is left for the next batch's commit, never a crash."""
    if not offsets:
        return
    consumer_thread = cast(Any, app.consumer)._thread

    async def commit_assigned() -> None:
        client = consumer_thread._ensure_consumer()
        assigned = client.assignment()
        mine = {
            tp: OffsetAndMetadata(offset, "")
            for (topic, partition), offset in offsets.items()
            if (tp := KafkaTopicPartition(topic, partition)) in assigned
        }
        if mine:
            try:
                await client.commit(mine)
            except Exception as exc:
                log.debug("offset commit refused: %r", exc)

    try:
        await consumer_thread.call_thread(commit_assigned)
    except Exception as exc:
        log.debug("offset commit refused: %r", exc)


def _read_until_answered(
    read: Callable[[set[PartitionKey]], Mapping[PartitionKey, int]], keys: set[PartitionKey]
) -> Mapping[PartitionKey, int]:
    deadline = time.monotonic() + POSITIONS_ON_ASSIGNMENT_TIMEOUT_S
    while True:
        try:
            return read(keys)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def _exit(code: int, why: str) -> NoReturn:
    """Leave at once with `code`, so a supervisor restarts the worker; say why first."""
    log.error("exiting with code %d: %s", code, why)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_worker(
    app: faust.App,
    config: WorkerConfig,
    *,
    loglevel: str = "warn",
    logging_config: dict[str, Any] | None = None,
) -> None:
    """Run `app` in the foreground until SIGTERM (or an exit code above); `logging_config`
    (a dictConfig) replaces faust's text logs."""
    config.data_dir.mkdir(parents=True, exist_ok=True)  # faust creates only the last level
    worker = faust.Worker(app, loglevel=loglevel, quiet=True, logging_config=logging_config)
    worker.execute_from_commandline()
