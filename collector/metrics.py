"""The collector's metrics: its requests (observability.http) and what Kafka acknowledged."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from observability.http import HttpMetrics

# acks=all on a local broker: a few ms; a broker restart or a new leader: seconds.
ACK_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class CollectorMetrics(HttpMetrics):
    def __init__(self) -> None:
        super().__init__("collector")
        self.kafka_ack = Histogram(
            "rapport_collector_kafka_ack_seconds",
            "From handing a request's events to the Kafka producer until the broker "
            "acknowledged them all (acks=all), per request.",
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "rapport_collector_events_accepted",
            "Events Kafka acknowledged, so the collector answered 200 for them.",
            registry=self.registry,
        )

    def acknowledged(self, events: int, seconds: float) -> None:
        self.kafka_ack.observe(seconds)
        self.events.inc(events)
