from __future__ import annotations

from producers.sample import sample_calls
from projections.timeline import timeline_entry


def test_entry_places_event_by_event_time_and_summarises_it() -> None:
    event = next(sample_calls(customers=1, calls=1))
    entry = timeline_entry(event)
    assert entry.event_id == event.event_id
    assert entry.occurred_at == event.occurred_at
    assert entry.customer_id == "cust-001"
    assert entry.channel == "call_center"
    assert event.payload.topic in entry.summary  # type: ignore[attr-defined]
    assert entry.payload["agent"] == event.payload.agent  # type: ignore[attr-defined]


def test_sample_is_deterministic_per_seed() -> None:
    assert list(sample_calls(seed=3)) == list(sample_calls(seed=3))
    assert list(sample_calls(seed=3)) != list(sample_calls(seed=4))
