"""The worker's own view of the log (streams/kafka_log.py), on the real broker: where each
partition starts and ends. The watchdog judges stalls by the heads, and a batch after a
retention gap asks where the log starts; both failed silently when it could not connect."""

from __future__ import annotations

import pytest
from kafka import KafkaProducer

from infra.settings import Settings
from streams.kafka_log import KafkaLog

pytestmark = pytest.mark.integration


def test_the_heads_and_starts_of_every_partition(rapport_settings: Settings) -> None:
    s = rapport_settings
    producer = KafkaProducer(bootstrap_servers=s.bootstrap)
    for n in range(5):
        producer.send(s.topic, value=b"{}", partition=n % 2)
    producer.flush()
    producer.close()
    kafka_log = KafkaLog(s.bootstrap)
    try:
        heads = kafka_log.ends(s.topic)
        starts = kafka_log.log_starts(set(heads))
    finally:
        kafka_log.close()
    assert heads == {(s.topic, 0): 3, (s.topic, 1): 2, (s.topic, 2): 0}
    assert starts == dict.fromkeys(heads, 0)
