"""Offsets of the touchpoint log, asked of the broker directly, outside any consumer group.

The worker asks where a partition's log now starts (to tell records deleted by retention
from records it has not read yet) and where it ends (to measure lag for its watchdog),
without disturbing the consumer that feeds it.
"""

from __future__ import annotations

import threading
from typing import Any

from kafka import TopicPartition

from streams.kafka_clients import consumer

PartitionKey = tuple[str, int]


class KafkaLog:
    def __init__(self, bootstrap: str, *, timeout_s: float = 10.0) -> None:
        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self._consumer: Any = None
        self._lock = threading.Lock()  # kafka-python clients are not thread-safe

    def log_starts(self, keys: set[PartitionKey]) -> dict[PartitionKey, int]:
        """The first offset each partition's log still holds."""
        with self._lock:
            found = self._client().beginning_offsets([TopicPartition(t, p) for t, p in keys])
        return {(tp.topic, tp.partition): offset for tp, offset in found.items()}

    def ends(self, topic: str) -> dict[PartitionKey, int]:
        """The next offset of every partition of `topic`: the head right now."""
        with self._lock:
            client = self._client()
            partitions = client.partitions_for_topic(topic) or set()
            found = client.end_offsets([TopicPartition(topic, p) for p in partitions])
        return {(tp.topic, tp.partition): offset for tp, offset in found.items()}

    def _client(self) -> Any:
        if self._consumer is None:
            self._consumer = consumer(
                self.bootstrap,
                request_timeout_ms=int(self.timeout_s * 1000) + 1000,
                bootstrap_timeout_ms=int(self.timeout_s * 1000),
            )
        return self._consumer

    def close(self) -> None:
        with self._lock:
            if self._consumer is not None:
                self._consumer.close()
                self._consumer = None
