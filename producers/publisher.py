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
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from kafka import KafkaProducer
from kafka import errors as kafka_errors
from kafka.partitioner.default import murmur2

from producers.errors import (
    BrokerUnavailable,
    DeliveryFailed,
    EventTooLarge,
    PublisherClosed,
    PublishError,
)
from schemas import Envelope
from schemas.codec import encode_verified

# Measured on the local broker (none, gzip, snappy, lz4, zstd): zstd gave the highest send rate
# (fewer bytes through kafka-python's pure-Python network path) and the smallest log.
DEFAULT_COMPRESSION = "zstd"

ErrorHandler = Callable[[UUID, PublishError], None]


class EventSealer(Protocol):
    """Seals an event's personal fields before it leaves (`privacy.sealing.Sealer`)."""

    def prepare(self, events: Iterable[Envelope]) -> None: ...

    def seal(self, event: Envelope, value: bytes) -> tuple[bytes, bytes]: ...


_SAMPLE_EVERY = 500
_FLUSH_ROUNDS = 64
_PREPARE_CHUNK = 1000  # a batch is split at most log2(batch_size / record size) times


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
    # Backpressure: `publish` waits once this many events are unacknowledged (kafka-python
    # 3 no longer bounds its buffer), so an endless fire-and-forget stream stays in memory.
    max_pending: int = 10_000
    # False: constructing needs no reachable broker (a server that must start, and answer
    # 503, while Kafka is down). The broker protocol version is then assumed, not probed.
    connect_eagerly: bool = True
    on_error: ErrorHandler | None = None
    # Seals personal fields with the customer's data key (docs/privacy.md); None: sent in
    # clear (tests of the transport, and producers outside Rapport's key store).
    sealer: EventSealer | None = None
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
        self._observed = False  # the caller has seen the failure: flush need not raise it

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

    def __call__(self, exc: BaseException) -> None:
        """The errback kafka-python calls, on its I/O thread, if the event was not stored.

        The delivery is its own errback: a bound method would be a second object kept alive
        per pending event for the garbage collector to walk (with the collector off, the
        bench's B was about a tenth faster against A)."""
        self._publisher._record_failure(self, exc)

    def add_done_callback(self, callback: Callable[[Delivery], None]) -> None:
        """Call `callback(self)` when done: on Kafka's I/O thread, or now if already done."""
        self._future.add_callback(lambda _: callback(self))
        self._future.add_errback(lambda _: callback(self))


class Publisher:
    """Publishes touchpoints to one topic. Close it (or use `with`) when done.

    Only failures call back (an errback per event, run on kafka-python's I/O thread);
    success needs no per-event work, and no delivery is kept once Kafka settled it: both a
    success callback and a list of pending deliveries were measured to cost the
    publishing thread a third of its rate (GIL contention; old-generation GC passes).
    Backpressure samples one future in `_SAMPLE_EVERY`.
    """

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
        self._lock = threading.Lock()
        self._sent = 0
        self._samples: deque[Any] = deque()  # every _SAMPLE_EVERY-th future, oldest first
        self._closed = False
        self._stamp_second = -1.0
        self._stamp = b""
        self._sealer = config.sealer
        try:
            self._producer = KafkaProducer(**config.kafka_config())
        except (kafka_errors.KafkaError, OSError) as exc:
            raise BrokerUnavailable(
                f"cannot connect to Kafka at {config.bootstrap}: {exc}"
            ) from None
        self._partitions: Partitions | None = None
        if "partitioner" not in config.extra:  # kafka-python's DefaultPartitioner
            # The producer's ClusterMetadata: kafka-python has no public accessor for it.
            self._partitions = Partitions(self._producer._metadata, self.topic)

    # -- sending ------------------------------------------------------------------------
    def encode(self, event: Envelope) -> EncodedEvent:
        """The key and bytes `event` travels as, stamped with received_at if it has none."""
        key, value = self._encode(event)
        return EncodedEvent(event.event_id, key, value)

    def _encode(self, event: Envelope) -> tuple[bytes, bytes]:
        # Verified: an event that may have changed since it was validated is decoded, and
        # nothing invalid may reach the topic (schemas.codec, schemas.provenance).
        value = encode_verified(event)
        if event.received_at is None:
            # Appending the field to the encoded JSON object costs well under a microsecond;
            # a model_copy to set it costs ~10 µs, a fifth of kafka-python's own send.
            now = time.time()
            if now - self._stamp_second >= 0.001:  # millisecond resolution is plenty
                self._stamp_second = now
                iso = datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds")
                self._stamp = b',"received_at":"' + iso.replace("+00:00", "Z").encode() + b'"}'
            value = value[:-1] + self._stamp
        if self._sealer is not None:
            return self._sealer.seal(event, value)
        customer = event.customer
        key = customer.customer_id or customer.partition_key  # the common case, cheaply
        return key.encode(), value

    def send(self, encoded: EncodedEvent) -> Delivery:
        """Hand an encoded event to the producer (fire-and-forget); see `publish`."""
        return self._send(encoded.event_id, encoded.key, encoded.value)

    def _send(self, event_id: UUID, key: bytes, value: bytes) -> Delivery:
        if self._closed:
            raise PublisherClosed(f"publisher for {self.topic} is closed")
        partitions = self._partitions
        partition = None if partitions is None else partitions.of(key)
        try:
            try:
                future = self._producer.send(self.topic, value, key, partition=partition)
            except ValueError:  # the topic's partitions changed a moment ago: let it pick
                if partition is None:
                    raise
                future = self._producer.send(self.topic, value, key)
        except kafka_errors.KafkaError as exc:
            raise translate(exc, event_id) from None
        delivery = Delivery(event_id, future, self)
        future.add_errback(delivery)
        self._sent += 1
        if self._sent % _SAMPLE_EVERY == 0:
            self._samples.append(future)
            if len(self._samples) * _SAMPLE_EVERY > self.config.max_pending:
                self._make_room()
        return delivery

    def publish(self, event: Envelope) -> Delivery:
        """Queue `event` for delivery and return at once.

        Raises BrokerUnavailable when Kafka gave no metadata within `max_block_ms`. A
        later delivery failure is raised by `flush()` / `close()`, or by
        `Delivery.result()` if the caller asks, and is passed to `on_error`.
        """
        key, value = self._encode(event)
        return self._send(event.event_id, key, value)

    def publish_and_wait(self, event: Envelope, timeout: float | None = None) -> Acknowledged:
        """Publish `event` and return once Kafka has acknowledged it (raise if it did not)."""
        delivery = self.publish(event)
        self._flush_producer(timeout)  # do not wait out linger_ms for one event
        return delivery.result(timeout=timeout)

    def publish_all(self, events: Iterable[Envelope]) -> int:
        """Publish every event, then flush; the count published."""
        count = 0
        chunk: list[Envelope] = []
        for event in events:
            chunk.append(event)
            if len(chunk) == _PREPARE_CHUNK:
                count += self._publish_chunk(chunk)
                chunk = []
        count += self._publish_chunk(chunk)
        self.flush()
        return count

    def prepare(self, events: list[Envelope]) -> None:
        """Before publishing `events` one by one: make their customers' new data keys in
        one round trip (when sealing), rather than one per customer."""
        if self.config.sealer is not None and events:
            self.config.sealer.prepare(events)

    def _publish_chunk(self, chunk: list[Envelope]) -> int:
        self.prepare(chunk)
        for event in chunk:
            self.publish(event)
        return len(chunk)

    # -- completion ---------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> None:
        """Wait until every event published so far is acknowledged or failed.

        Raises DeliveryFailed naming how many events were not delivered since the last
        flush (except those whose failure the caller already got from the Delivery).
        """
        self._flush_producer(timeout)
        self._samples.clear()
        with self._lock:
            failed, self._failed = self._failed, {}
        unseen = [(d, exc) for d, exc in failed.values() if not d._observed]
        if unseen:
            errors = [translate(exc, d.event_id) for d, exc in unseen]
            raise DeliveryFailed(
                f"{len(unseen)} events not delivered to {self.topic}; first: {errors[0]}",
                event_ids=[d.event_id for d, _ in unseen],
                retriable=all(e.retriable for e in errors),
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

    def _flush_producer(self, timeout: float | None) -> None:
        for _ in range(_FLUSH_ROUNDS):
            try:
                self._producer.flush(timeout=timeout)
                return
            except kafka_errors.KafkaTimeoutError:
                raise DeliveryFailed(
                    f"events to {self.topic} not acknowledged in {timeout}s"
                ) from None
            except kafka_errors.KafkaError:
                # kafka-python wakes a flush with UnknownError when it splits a batch the
                # broker found too large; the halves are pending again: wait for them.
                continue

    def _make_room(self) -> None:
        """Backpressure: wait until at most half of `max_pending` events are unsettled."""
        samples = self._samples
        deadline = (
            time.monotonic() + (self.config.delivery_timeout_ms + self.config.max_block_ms) / 1000
        )
        while samples and (
            samples[0].is_done or len(samples) * _SAMPLE_EVERY > self.config.max_pending // 2
        ):
            oldest = samples[0]
            try:
                oldest.get(timeout=max(deadline - time.monotonic(), 0.001))
            except Exception:  # a failure is for flush to report
                if not oldest.is_done:
                    raise BrokerUnavailable(
                        f"{len(samples) * _SAMPLE_EVERY} events to {self.topic} "
                        "still unacknowledged"
                    ) from None
            samples.popleft()

    def _record_failure(self, delivery: Delivery, exc: BaseException) -> None:
        with self._lock:
            self._failed[id(delivery)] = (delivery, exc)
        if self.config.on_error is not None:
            self.config.on_error(delivery.event_id, translate(exc, delivery.event_id))

    def _forget_failure(self, delivery: Delivery) -> None:
        with self._lock:
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


class Partitions:
    """The partition of each key, as kafka-python's DefaultPartitioner picks it: murmur2 of
    the key, modulo the topic's partition count (as Kafka's Java client does).

    Computed once a key: the partitioner (a pure-Python murmur2, and two sets of the topic's
    partitions built for every record) was a fifth of kafka-python's send in a profile, and
    the keys of a workload are its customers, each sending many events. The partitions are
    re-read whenever kafka-python updates the cluster's metadata (on its I/O thread).
    """

    LARGEST = 200_000  # keys remembered (then forgotten all at once)

    def __init__(self, cluster: Any, topic: str) -> None:
        self.topic = topic
        self._table: tuple[dict[bytes, int], tuple[int, ...]] = ({}, ())
        self.updated(cluster)
        cluster.add_listener(self.updated)

    def of(self, key: bytes) -> int | None:
        """The partition of `key`; None while the topic's partitions are not known yet
        (kafka-python then waits for them and picks)."""
        chosen, ids = self._table  # one read: both from the same metadata
        partition = chosen.get(key)
        if partition is None and ids:
            if len(chosen) >= self.LARGEST:
                chosen.clear()
            partition = chosen[key] = ids[(murmur2(key) & 0x7FFFFFFF) % len(ids)]
        return partition

    def updated(self, cluster: Any) -> None:
        """kafka-python's metadata listener: forget every choice if the partitions changed."""
        ids = tuple(sorted(cluster.partitions_for_topic(self.topic) or ()))
        if ids != self._table[1]:
            self._table = ({}, ids)


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
