"""The simulator: deterministic, plausible, and covering every registered type."""

from __future__ import annotations

import itertools
from collections import Counter

from producers.simulator import simulate
from schemas import REGISTRY, decode_event, encode_event


def test_same_seed_same_events_different_seed_different_events() -> None:
    first = [encode_event(e) for e in itertools.islice(simulate(40, seed=1), 500)]
    again = [encode_event(e) for e in itertools.islice(simulate(40, seed=1), 500)]
    other = [encode_event(e) for e in itertools.islice(simulate(40, seed=2), 500)]
    assert first == again and first != other


def test_every_registered_type_appears_and_every_event_is_valid() -> None:
    events = list(itertools.islice(simulate(200, seed=9), 10_000))
    counts = Counter(e.type for e in events)
    # Erasures are recorded by `rapport erase` after keys are destroyed, never simulated.
    assert set(counts) == set(REGISTRY.known_types()) - {"privacy.erased"}
    assert all(decode_event(encode_event(e)) == e for e in events[:2000])
    assert len({e.event_id for e in events}) == len(events)
    # plausible shapes: views outnumber purchases, purchases outnumber refunds
    assert counts["web.page_viewed"] > counts["commerce.purchased"] > counts["commerce.refunded"]


def test_spend_is_heavy_tailed() -> None:
    amounts = sorted(
        float(e.payload.amount)  # type: ignore[attr-defined]
        for e in itertools.islice(simulate(300, seed=4), 20_000)
        if e.type == "commerce.purchased" and e.payload.currency != "VND"  # type: ignore[attr-defined]
    )
    median, p99 = amounts[len(amounts) // 2], amounts[int(len(amounts) * 0.99)]
    assert p99 > 4 * median
