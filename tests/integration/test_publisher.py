"""The SDK against the real broker: acks, ordering per customer, and failures that surface."""

from __future__ import annotations

import itertools

import pytest
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.partitioner.default import murmur2

from infra.settings import Settings
from producers import Publisher
from producers.errors import BrokerUnavailable, DeliveryFailed, PublisherClosed
from producers.simulator import simulate
from tests.support import consume

pytestmark = pytest.mark.integration


def test_wait_for_ack_and_fire_and_forget(rapport_settings: Settings) -> None:
    events = list(itertools.islice(simulate(30, seed=3), 300))
    with Publisher(rapport_settings.bootstrap, rapport_settings.topic) as publisher:
        ack = publisher.publish_and_wait(events[0], timeout=30)
        assert ack.topic == rapport_settings.topic and ack.offset == 0
        deliveries = [publisher.publish(e) for e in events[1:]]
        publisher.flush()
        assert all(d.done() and d.exception() is None for d in deliveries)
        partition_of = {}
        ids = sorted(publisher._producer.partitions_for(rapport_settings.topic))
        for event, delivery in zip(events[1:], deliveries, strict=True):
            stored = delivery.result()
            key = event.customer.partition_key
            assert partition_of.setdefault(key, stored.partition) == stored.partition
            # Where kafka-python's DefaultPartitioner (any Kafka client) sends the key.
            assert stored.partition == ids[(murmur2(key.encode()) & 0x7FFFFFFF) % len(ids)]
    records = consume(rapport_settings, len(events))
    order = [r["event_id"] for k, r in records if k == events[5].customer.partition_key.encode()]
    expected = [
        str(e.event_id)
        for e in events
        if e.customer.partition_key == events[5].customer.partition_key
    ]
    assert order == expected  # one customer's events keep their order


def test_an_undeliverable_event_is_raised_by_flush_never_dropped(
    rapport_settings: Settings,
) -> None:
    small = rapport_settings.topic + ".small"
    admin = KafkaAdminClient(bootstrap_servers=rapport_settings.bootstrap)
    admin.create_topics([NewTopic(small, 1, 1, topic_configs={"max.message.bytes": "600"})])
    admin.close()
    events = list(itertools.islice(simulate(5, seed=4), 50))
    errors = []
    publisher = Publisher(
        rapport_settings.bootstrap,
        small,
        compression=None,
        on_error=lambda event_id, exc: errors.append(event_id),
    )
    for event in events:
        publisher.publish(event)
    with pytest.raises(DeliveryFailed) as raised:
        publisher.flush()
    assert raised.value.event_ids and set(raised.value.event_ids) == set(errors)
    publisher.close()
    with pytest.raises(PublisherClosed):
        publisher.publish(events[0])


def test_unreachable_broker_is_a_clear_error() -> None:
    with pytest.raises(BrokerUnavailable, match=r"127\.0\.0\.1:1"):
        Publisher("127.0.0.1:1", "t", extra={"bootstrap_timeout_ms": 1000})
    lazy = Publisher("127.0.0.1:1", "t", connect_eagerly=False, max_block_ms=300)
    with pytest.raises(BrokerUnavailable) as raised:
        lazy.publish(next(simulate(1)))
    assert raised.value.retriable
    lazy.close(timeout=1)
