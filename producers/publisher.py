"""The Python SDK: publish touchpoints to Kafka, keyed by customer so their order is kept.

Two modes, one producer:

- fire-and-forget: `publish(event)` returns a `Delivery` at once; a failure is raised by
  the next `flush()` or `close()` (and passed to `on_error`, when given), never dropped;
- wait-for-ack: `publish_and_wait(event)` returns only when Kafka has acknowledged it.

Underneath is kafka-python with idempotence and acks=all: transient errors (leader moves,
timeouts, lost connections) are retried with backoff inside `delivery_timeout_ms` without
duplicating or reordering records; only what is still unacknowledged then is an error.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple
from uuid import UUID

from kafka import KafkaProducer
from kafka import errors as kafka_errors

from producers.errors import (
    BrokerUnavailable,
    DeliveryFailed,
    EventTooLarge,
    PublisherClosed,
    PublishError,
)
from schemas import Envelope, encode_event

# Measured by bench/bench_publish.py on the local broker: zstd gave the highest send rate
# (fewer bytes through kafka-python's pure-Python network path) and the smallest log.
DEFAULT_COMPRESSION = "zstd"

ErrorHandler = Callable[[UUID, PublishError], None]
_FLUSH_ROUNDS = 64  # a batch is split at most log2(batch_size / record size) times


@dataclass(frozen=True)
class PublisherConfig:
    """How the SDK talks to Kafka. The defaults favour throughput with bounded latency."""

    bootstrap: str
    topic: str
    linger_ms: int = 5
    batch_size: int = 256 * 1024
    compression: str | None = DEFAULT_COMPRESSION
    # Transient errors are retried (every retry_backoff_ms) until this much time has passed.
    delivery_timeout_ms: int = 60_000
    retry_backoff_ms: int = 100
    request_timeout_ms: int = 30_000
    # How long `publish` may block waiting for topic metadata or free buffer space.
    max_block_ms: int = 30_000
    # Backpressure: `publish` waits while this many events are unacknowledged (kafka-python
    # 3 no longer bounds its buffer), so an endless fire-and-forget stream stays in memory.
    max_pending: int = 50_000
    # False: constructing needs no reachable broker (a server that must start, and answer
    # 503, while Kafka is down). The broker protocol version is then assumed, not probed.
    connect_eagerly: bool = True
    on_error: ErrorHandler | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def kafka_config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": self.linger_ms,
            "batch_size": self.batch_size,
            "compression_type": self.compression,
            "delivery_timeout_ms": self.delivery_timeout_ms,
            "retry_backoff_ms": self.retry_backoff_ms,
            "request_timeout_ms": self.request_timeout_ms,
            "max_block_ms": self.max_block_ms,
        }
        if not self.connect_eagerly:
            config["api_version"] = (4, 0)
        return {**config, **self.extra}


class EncodedEvent(NamedTuple):
    """An event ready for Kafka: its id, its partition key, its wire bytes."""

    event_id: UUID
    key: bytes
    value: bytes


class Acknowledged(NamedTuple):
    """Where Kafka stored an event."""

    topic: str
    partition: int
    offset: int


class Delivery:
    """The pending delivery of one event; `result()` waits for Kafka's acknowledgement."""

    __slots__ = ("_future", "_observed", "_publisher", "event_id")

    def __init__(self, event_id: UUID, future: Any, publisher: Publisher) -> None:
        self.event_id = event_id
        self._future = future
        self._publisher = publisher
        self._observed = False

    def done(self) -> bool:
        return bool(self._future.is_done)

    def result(self, timeout: float | None = None) -> Acknowledged:
        """Wait for the acknowledgement; raise a PublishError if the event was not stored."""
        try:
            meta = self._future.get(timeout=timeout)
        except kafka_errors.KafkaTimeoutError:
            if not self._future.is_done:
                raise DeliveryFailed(
                    f"event {self.event_id} not acknowledged within {timeout}s",
                    event_ids=[self.event_id],
                ) from None
            self._observe()
            raise translate(self._future.exception, self.event_id) from None
        except Exception as exc:
            self._observe()
            raise translate(exc, self.event_id) from None
        return Acknowledged(meta.topic, meta.partition, meta.offset)

    def exception(self) -> PublishError | None:
        """The failure, once done (the caller now has it: flush won't raise it again)."""
        if not self._future.failed():
            return None
        self._observe()
        return translate(self._future.exception, self.event_id)

    def _observe(self) -> None:
        self._observed = True
        self._publisher._forget_failure(self)

    def add_done_callback(self, callback: Callable[[Delivery], None]) -> None:
        """Call `callback(self)` when done: on Kafka's I/O thread, or now if already done."""
        self._future.add_callback(lambda _: callback(self))
        self._future.add_errback(lambda _: callback(self))

    def _on_success(self, _: object) -> None:
        self._publisher._completed += 1  # only Kafka's I/O thread writes it

    def _on_failure(self, exc: BaseException) -> None:
        self._publisher._completed += 1
        self._publisher._record_failure(self, exc)


class Publisher:
    """Publishes touchpoints to one topic. Thread-safe; close it (or use `with`) when done."""

    def __init__(self, bootstrap: str, topic: str, **options: Any) -> None:
        """Options are the fields of PublisherConfig (linger_ms, compression, on_error…)."""
        self._start(PublisherConfig(bootstrap=bootstrap, topic=topic, **options))

    @classmethod
    def from_config(cls, config: PublisherConfig) -> Publisher:
        publisher = cls.__new__(cls)
        publisher._start(config)
        return publisher

    def _start(self, config: PublisherConfig) -> None:
        self.config = config
        self.topic = config.topic
        self._failed: dict[int, tuple[Delivery, BaseException]] = {}
        self._failed_lock = threading.Lock()
        self._closed = False
        self._sent = 0  # written by the publishing thread(s)
        self._completed = 0  # written by Kafka's I/O thread
        try:
            self._producer = KafkaProducer(**config.kafka_config())
        except (kafka_errors.KafkaError, OSError) as exc:
            raise BrokerUnavailable(
                f"cannot connect to Kafka at {config.bootstrap}: {exc}"
            ) from None

    # -- sending ------------------------------------------------------------------------
    @staticmethod
    def encode(event: Envelope, *, received_at: datetime | None = None) -> EncodedEvent:
        """The key and bytes `event` travels as, stamped with received_at if it has none."""
        value = encode_event(event)
        if event.received_at is None:
            # Appending the field to the encoded JSON object costs well under a microsecond;
            # a model_copy to set it costs ~10 µs, a fifth of kafka-python's own send.
            stamp = (received_at or datetime.now(UTC)).isoformat().replace("+00:00", "Z")
            value = b'%s,"received_at":"%s"}' % (value[:-1], stamp.encode())
        return EncodedEvent(event.event_id, event.customer.partition_key.encode(), value)

    def send(self, encoded: EncodedEvent) -> Delivery:
        """Hand an encoded event to the producer (fire-and-forget); see `publish`."""
        if self._closed:
            raise PublisherClosed(f"publisher for {self.topic} is closed")
        if self._sent - self._completed >= self.config.max_pending:
            self._wait_for_room()
        try:
            future = self._producer.send(self.topic, value=encoded.value, key=encoded.key)
        except kafka_errors.KafkaError as exc:
            raise translate(exc, encoded.event_id) from None
        self._sent += 1
        delivery = Delivery(encoded.event_id, future, self)
        future.add_callback(delivery._on_success)
        future.add_errback(delivery._on_failure)
        return delivery

    def _wait_for_room(self) -> None:
        # Polling the counters every few ms keeps the per-event callbacks lock-free.
        low_water = self.config.max_pending // 2
        waited = 0.0
        while self._sent - self._completed > low_water:
            time.sleep(0.005)
            waited += 0.005
            if waited * 1000 > self.config.delivery_timeout_ms + self.config.max_block_ms:
                raise BrokerUnavailable(
                    f"{self._sent - self._completed} events to {self.topic} still "
                    f"unacknowledged after {waited:.0f}s"
                )

    def publish(self, event: Envelope) -> Delivery:
        """Queue `event` for delivery and return at once.

        Raises BrokerUnavailable when Kafka gave no metadata or buffer space within
        `max_block_ms`. A later delivery failure is raised by `flush()` / `close()`, or by
        `Delivery.result()` if the caller asks, and is passed to `on_error`.
        """
        return self.send(self.encode(event))

    def publish_and_wait(self, event: Envelope, timeout: float | None = None) -> Acknowledged:
        """Publish `event` and return once Kafka has acknowledged it (raise if it did not)."""
        delivery = self.publish(event)
        self._producer.flush(timeout=timeout)  # do not wait out linger_ms for one event
        return delivery.result(timeout=timeout)

    def publish_all(self, events: Iterable[Envelope]) -> int:
        """Publish every event, then flush; the count published."""
        count = 0
        for event in events:
            self.publish(event)
            count += 1
        self.flush()
        return count

    # -- completion ---------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event published so far is acknowledged or failed.

        Raises DeliveryFailed naming how many events were not delivered since the last
        flush (except those whose failure the caller already got from `Delivery.result`).
        """
        for _ in range(_FLUSH_ROUNDS):
            try:
                self._producer.flush(timeout=timeout)
                break
            except kafka_errors.KafkaTimeoutError:
                raise DeliveryFailed(
                    f"events to {self.topic} not acknowledged in {timeout}s"
                ) from None
            except kafka_errors.KafkaError:
                # kafka-python wakes a flush with UnknownError when it splits a batch the
                # broker found too large; the halves are pending again: wait for them.
                continue
        with self._failed_lock:
            failed, self._failed = self._failed, {}
        unreported = [(d, exc) for d, exc in failed.values() if not d._observed]
        if unreported:
            first = translate(unreported[0][1], unreported[0][0].event_id)
            raise DeliveryFailed(
                f"{len(unreported)} events not delivered to {self.topic}; first: {first}",
                event_ids=[d.event_id for d, _ in unreported],
                retriable=all(translate(exc, d.event_id).retriable for d, exc in unreported),
            )

    def close(self, timeout: float | None = None) -> None:
        """Flush, then release the connections; raises like `flush` if events were lost."""
        if self._closed:
            return
        try:
            self.flush(timeout)
        finally:
            self._closed = True
            self._producer.close(timeout=timeout if timeout is not None else 30)

    def _record_failure(self, delivery: Delivery, exc: BaseException) -> None:
        with self._failed_lock:
            self._failed[id(delivery)] = (delivery, exc)
        if self.config.on_error is not None:
            self.config.on_error(delivery.event_id, translate(exc, delivery.event_id))

    def _forget_failure(self, delivery: Delivery) -> None:
        with self._failed_lock:
            self._failed.pop(id(delivery), None)

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def translate(exc: BaseException | None, event_id: UUID) -> PublishError:
    """A kafka-python error as the PublishError a caller can act on."""
    if isinstance(exc, PublishError):
        return exc
    if isinstance(exc, kafka_errors.MessageSizeTooLargeError):
        return EventTooLarge(f"event {event_id} is larger than Kafka accepts: {exc}")
    if isinstance(exc, kafka_errors.IllegalStateError):
        return PublisherClosed(f"publisher is closed: {exc}")
    if isinstance(exc, kafka_errors.KafkaTimeoutError) and "metadata" in str(exc).lower():
        return BrokerUnavailable(f"Kafka did not answer: {exc}")
    retriable = isinstance(
        exc, kafka_errors.RetriableError | kafka_errors.KafkaTimeoutError | OSError
    )
    return DeliveryFailed(
        f"event {event_id} not delivered: {exc}", event_ids=[event_id], retriable=retriable
    )
