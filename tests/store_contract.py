"""The store contract's cases, run against every implementation (projections.store).

`tests/unit/test_store_contract.py` runs them on the in-memory twin and
`tests/integration/test_store_contract.py` on PostgreSQL; each provides a `versions`
fixture: an empty ProjectionVersions. Two versions fed the same events must be identical
(`differences` finds nothing), however the events were batched, repeated or reordered.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import pytest

from projections.errors import PositionGap, ProjectionError, RecordRefused
from projections.store import PositionedEvent, ProjectionVersions
from schemas import CustomerRef, Envelope
from schemas.payloads.email import EmailOpened
from tests.workload import mixed_events

TOPIC = "touchpoints"
V1, V2 = "core_v1", "core_v2"


def _log(events: Sequence[Envelope | None], partitions: int = 3) -> list[PositionedEvent]:
    """Events spread over partitions round-robin, offsets counting per partition."""
    next_offset = [0] * partitions
    records = []
    for i, event in enumerate(events):
        p = i % partitions
        records.append(PositionedEvent(TOPIC, p, next_offset[p], event))
        next_offset[p] += 1
    return records


def _identical(versions: ProjectionVersions, live: str, other: str) -> list[object]:
    """The differences between version `other` and version `live` (made active for it)."""
    versions.activate(live)
    _, differences = versions.differences(versions.freeze_live(TOPIC), other)
    return list(differences)


def test_a_duplicate_send_is_counted_once(versions: ProjectionVersions) -> None:
    events = mixed_events(customers=6, per_customer=10, seed=41)
    versions.prepare(V1)
    versions.prepare(V2)
    once, twice = versions.store(V1), versions.store(V2)
    once.apply_batch(_log(events))
    first = twice.apply_batch(_log(events)[:30])
    again = twice.apply_batch(_log(events + events[:30])[30:])  # the first 30 sent again

    assert (first.projected, again.projected, again.duplicates) == (30, 30, 30)
    assert _identical(versions, V1, V2) == []
    # What the worker's metrics count: only the new events, by type.
    new = events[30:]
    assert again.projected_types == Counter(e.type for e in new)
    assert again.newest_received == max(e.received_at for e in new if e.received_at)


def test_redelivered_records_are_skipped_and_positions_advance(
    versions: ProjectionVersions,
) -> None:
    log = _log(mixed_events(customers=3, per_customer=10, seed=42))
    versions.prepare(V1)
    store = versions.store(V1)
    store.apply_batch(log[:20])
    result = store.apply_batch(log[10:])

    assert (result.redelivered, result.projected) == (10, 10)
    assert sum(result.projected_types.values()) == 10
    assert versions.positions_of(V1, TOPIC) == {0: 10, 1: 10, 2: 10}
    assert store.positions({(TOPIC, 0), (TOPIC, 7)}) == {(TOPIC, 0): 10}


def test_a_batch_past_the_stored_position_is_refused_whole(versions: ProjectionVersions) -> None:
    log = _log(mixed_events(customers=3, per_customer=10, seed=43), partitions=1)
    versions.prepare(V1)
    store = versions.store(V1)
    store.apply_batch(log[:10])
    with pytest.raises(PositionGap, match="stored 10, got 12"):
        store.apply_batch(log[12:20])
    assert versions.positions_of(V1, TOPIC) == {0: 10}
    assert store.apply_batch(log[12:20], log_starts={(TOPIC, 0): 12}).projected == 8
    assert store.apply_batch(log[10:12]).redelivered == 2  # below the position now


def test_late_events_land_in_place_whatever_the_arrival_order(
    versions: ProjectionVersions,
) -> None:
    events = mixed_events(customers=5, per_customer=12, seed=44)
    shuffled = list(events)
    random.Random(44).shuffle(shuffled)
    versions.prepare(V1)
    versions.prepare(V2)
    versions.store(V1).apply_batch(_log(sorted(events, key=lambda e: e.occurred_at)))
    store = versions.store(V2)
    log = _log(shuffled)
    for start in range(0, len(log), 7):
        store.apply_batch(log[start : start + 7])

    assert _identical(versions, V1, V2) == []


def test_a_replay_equals_the_live_version_built_batch_by_batch(
    versions: ProjectionVersions,
) -> None:
    events = mixed_events(customers=8, per_customer=15, seed=45)
    log = _log(events + events[::9])  # with duplicates
    versions.prepare(V1)
    versions.prepare(V2)
    live = versions.store(V1)
    rng = random.Random(45)
    start = 0
    while start < len(log):  # small batches, each redelivering part of the one before
        size = rng.randint(1, 25)
        live.apply_batch(log[max(0, start - rng.randint(0, size)) : start + size])
        start += size
    versions.store(V2).apply_batch(log)  # the replay: one bulk batch

    assert _identical(versions, V1, V2) == []


def test_a_refused_event_names_its_record_and_changes_nothing(
    versions: ProjectionVersions,
) -> None:
    at = mixed_events(1, 1, seed=46)[0].occurred_at
    flood = [
        Envelope.new(
            EmailOpened(message_id=f"m-{k}"),
            customer=CustomerRef(
                customer_id="cust-flood",
                external_ids={f"sys{n}": f"{k}-{n}" for n in range(20)},
                social_handles={f"net{n}": f"{k}-{n}" for n in range(20)},
            ),
            occurred_at=at,
        )
        for k in range(26)  # the 25th passes 1,000 identifiers
    ]
    log = _log(flood, partitions=1)
    versions.prepare(V1)
    store = versions.store(V1)
    with pytest.raises(RecordRefused) as refused:
        store.apply_batch(log)
    assert refused.value.position == (TOPIC, 0, 24)
    assert refused.value.stage == "fold"
    assert versions.positions_of(V1, TOPIC) == {}

    parked = [*log[:24], *(PositionedEvent(TOPIC, 0, r.offset, None) for r in log[24:])]
    assert store.apply_batch(parked).projected == 24
    assert versions.positions_of(V1, TOPIC) == {0: 26}


def test_versions_swap_only_when_the_new_one_has_everything(versions: ProjectionVersions) -> None:
    log = _log(mixed_events(customers=4, per_customer=10, seed=47))
    assert versions.ensure_active() == V1
    following = versions.store()  # follows whichever version is active
    following.apply_batch(log[:20])
    versions.prepare(V2, bulk=True)
    versions.store(V2).apply_batch(log[:10])

    assert versions.activate_if_complete(V2, TOPIC) == (False, V1)
    versions.store(V2).apply_batch(log[10:20])
    versions.finish(V2, scores_as_of=None, params=None)
    assert versions.activate_if_complete(V2, TOPIC) == (True, V1)
    following.apply_batch(log[20:])  # lands in the version the swap activated
    assert versions.positions_of(V2, TOPIC) == {0: 14, 1: 13, 2: 13}
    assert versions.positions_of(V1, TOPIC) == {0: 7, 1: 7, 2: 6}

    listed = {v.name: v for v in versions.versions()}
    assert listed[V2].active and listed[V2].status == "active" and listed[V2].records == 40
    assert not listed[V1].active and listed[V1].status == "retired"
    with pytest.raises(ProjectionError, match="active"):
        versions.drop(V2)
    versions.drop(V1)
    assert [v.name for v in versions.versions()] == [V2]
