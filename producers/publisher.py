"""Publish touchpoints to Kafka, keyed by customer so each customer's events stay in order."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata

from producers.errors import PublishError
from schemas import Envelope
from schemas.codec import encode_verified


class Publisher:
    """A kafka-python producer with idempotence and acks=all.

    `publish` returns the delivery future; `flush` waits for every pending delivery and
    raises PublishError when any failed, so a lost event always surfaces to the caller.
    """

    def __init__(self, bootstrap: str, topic: str, **producer_config: Any) -> None:
        self.topic = topic
        config: dict[str, Any] = {
            "bootstrap_servers": bootstrap,
            "acks": "all",
            "enable_idempotence": True,
            "linger_ms": 5,
            "batch_size": 256 * 1024,
            "retries": 10,
            "retry_backoff_ms": 100,
            "request_timeout_ms": 30_000,
            **producer_config,
        }
        try:
            self._producer = KafkaProducer(**config)
        except KafkaError as exc:
            raise PublishError(f"cannot connect to Kafka at {bootstrap}: {exc}") from None
        self._pending: list[FutureRecordMetadata] = []

    def publish(self, event: Envelope) -> FutureRecordMetadata:
        """Send one event; raise a ContractError, sending nothing, if it is not valid."""
        event = event.received()
        value = encode_verified(event)  # what the worker would reject never reaches Kafka
        future = self._producer.send(
            self.topic, key=event.customer.partition_key.encode(), value=value
        )
        self._pending.append(future)
        return future

    def publish_all(self, events: Iterable[Envelope]) -> int:
        count = 0
        for event in events:
            self.publish(event)
            count += 1
        self.flush()
        return count

    def flush(self, timeout: float | None = 60.0) -> None:
        self._producer.flush(timeout=timeout)
        pending, self._pending = self._pending, []
        failures = [f.exception for f in pending if f.failed()]
        if any(not f.is_done for f in pending):
            raise PublishError(
                f"{sum(not f.is_done for f in pending)} events not acknowledged in {timeout}s"
            )
        if failures:
            raise PublishError(
                f"{len(failures)} events not delivered to {self.topic}: {failures[0]}"
            )

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._producer.close()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
