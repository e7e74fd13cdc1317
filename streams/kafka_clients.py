"""The one way the stream side builds its Kafka clients (kafka-python), and reads a topic.

The worker's own consumer is faust's (aiokafka); everything else that reads or writes
Kafka around it (the replay, the dead-letter writer and reader, the log offsets) gets its
clients here, so their settings are chosen once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition


def consumer(bootstrap: str, **options: Any) -> Any:
    """A consumer outside any group: it is assigned partitions, never commits."""
    return KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, **options)


def producer(bootstrap: str, **options: Any) -> Any:
    """A producer that waits for every in-sync replica."""
    return KafkaProducer(bootstrap_servers=bootstrap, acks="all", **options)


def admin(bootstrap: str, **options: Any) -> Any:
    return KafkaAdminClient(bootstrap_servers=bootstrap, **options)


class TopicMissing(LookupError):
    def __init__(self, topic: str) -> None:
        self.topic = topic
        super().__init__(f"topic {topic} does not exist")


def read_topic(bootstrap: str, topic: str) -> Iterator[Any]:
    """Every record of `topic`, from the beginning to its end as it is now, partition by
    partition in offset order. Raises TopicMissing."""
    client = consumer(bootstrap)
    try:
        partitions = client.partitions_for_topic(topic)
        if not partitions:
            raise TopicMissing(topic)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        client.assign(assigned)
        client.seek_to_beginning(*assigned)
        end = client.end_offsets(assigned)
        remaining = {tp for tp in assigned if end[tp] > 0}
        while remaining:
            for tp, records in client.poll(timeout_ms=1000).items():
                yield from (r for r in records if r.offset < end[tp])
            remaining = {tp for tp in remaining if client.position(tp) < end[tp]}
    finally:
        client.close()
