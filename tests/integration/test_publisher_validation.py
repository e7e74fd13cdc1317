"""The publisher refuses an invalid event before anything reaches the topic."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, TopicPartition

from infra.settings import Settings
from producers import Publisher
from schemas import CustomerRef, Envelope, EventValidationError
from schemas.payloads.call_center import CallCenterCall

pytestmark = pytest.mark.integration


def _records_in(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap)
    try:
        partitions = consumer.partitions_for_topic(settings.topic) or set()
        ends = consumer.end_offsets([TopicPartition(settings.topic, p) for p in partitions])
        return sum(ends.values())
    finally:
        consumer.close()


def test_an_invalid_event_is_refused_and_a_valid_one_still_goes(
    rapport_settings: Settings,
) -> None:
    valid = Envelope.new(
        CallCenterCall.model_validate(CallCenterCall.examples()[0]),
        customer=CustomerRef(customer_id="c-1"),
        occurred_at=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
    )
    invalid = valid.model_copy(update={"occurred_at": datetime(2026, 3, 1, 9, 30)})
    with Publisher(rapport_settings.bootstrap, rapport_settings.topic) as publisher:
        with pytest.raises(EventValidationError, match=r"occurred_at=.*timezone info"):
            publisher.publish(invalid)
        publisher.publish(valid)
    assert _records_in(rapport_settings) == 1
