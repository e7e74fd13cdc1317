"""The publisher picks each key's partition as kafka-python's DefaultPartitioner does."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from kafka.future import Future
from kafka.partitioner import DefaultPartitioner

from producers import Publisher, PublisherConfig
from producers.publisher import Partitions

TOPIC = "touchpoints"


class Cluster:
    """kafka-python's ClusterMetadata, as far as partitioners and listeners read it."""

    def __init__(self, partitions: set[int] | None) -> None:
        self.partitions = partitions
        self.listeners: list[Callable[[Any], None]] = []

    def topics(self) -> set[str]:
        return {TOPIC} if self.partitions is not None else set()

    def partitions_for_topic(self, topic: str) -> set[int] | None:
        return set(self.partitions) if self.partitions is not None else None

    def available_partitions_for_topic(self, topic: str) -> set[int] | None:
        return self.partitions_for_topic(topic)

    def add_listener(self, listener: Callable[[Any], None]) -> None:
        self.listeners.append(listener)

    def update(self, partitions: set[int]) -> None:
        self.partitions = partitions
        for listener in self.listeners:
            listener(self)


def kafka_python_choice(cluster: Cluster, key: bytes) -> int:
    return int(DefaultPartitioner().partition(TOPIC, None, key, None, None, cluster))


@given(
    keys=st.lists(st.binary(max_size=40), min_size=1, max_size=30),
    counts=st.lists(st.integers(min_value=1, max_value=64), min_size=1, max_size=3),
)
def test_every_key_goes_where_kafka_python_would_send_it(
    keys: list[bytes], counts: list[int]
) -> None:
    cluster = Cluster(set(range(counts[0])))
    partitions = Partitions(cluster, TOPIC)
    for count in counts:  # the topic grows: every choice is made again
        cluster.update(set(range(count)))
        for key in keys + keys:  # the second time from memory
            assert partitions.of(key) == kafka_python_choice(cluster, key)


def test_partitions_not_known_yet_are_left_to_kafka_python() -> None:
    cluster = Cluster(None)
    partitions = Partitions(cluster, TOPIC)
    assert partitions.of(b"c-1") is None
    cluster.update({0, 1, 2})
    assert partitions.of(b"c-1") == kafka_python_choice(cluster, b"c-1")


def test_a_partition_the_producer_no_longer_knows_is_left_to_it() -> None:
    """Between kafka-python's metadata update and its listener, a remembered partition may
    be gone (a topic made again with fewer): the record is sent as kafka-python picks."""
    sent: list[int | None] = []

    class Producer:
        def send(self, topic: str, value: bytes, key: bytes, partition: int | None = None) -> Any:
            if partition is not None and partition >= 2:
                raise ValueError(f"Unrecognized partition {partition} for topic {topic}")
            sent.append(partition)
            return Future()

    publisher = Publisher.from_config(
        PublisherConfig("127.0.0.1:1", TOPIC, connect_eagerly=False, max_block_ms=100)
    )
    publisher.close(timeout=1)
    cluster = Cluster(set(range(6)))
    publisher._producer, publisher._closed = Producer(), False  # type: ignore[assignment]
    publisher._partitions = Partitions(cluster, TOPIC)
    keys = [f"c-{n}".encode() for n in range(40)]
    for key in keys:
        publisher._send(uuid.uuid4(), key, b"{}")
    assert sent == [
        p if p < 2 else None for p in (kafka_python_choice(cluster, key) for key in keys)
    ]
