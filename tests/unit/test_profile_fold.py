"""The profile fold: order-independent, so redelivery order and late events cannot matter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from projections import profile
from projections.profile_rows import from_row, to_row
from schemas import CustomerRef, Envelope
from schemas.payloads.call_center import CallCenterCall
from schemas.payloads.profile import ConsentChanged, ProfileUpdated

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WHO = CustomerRef(customer_id="c-1", email="c1@example.com")


def _event(payload, minutes: int, n: int) -> Envelope:  # type: ignore[no-untyped-def]
    return Envelope.new(
        payload,
        customer=WHO,
        occurred_at=T0 + timedelta(minutes=minutes),
        event_id=uuid.UUID(int=n + 1),
    )


events_st = st.lists(
    st.tuples(
        st.sampled_from(["call", "trait", "consent"]),
        st.integers(0, 10_000),
        st.sampled_from(["gold", "silver", "bronze"]),
        st.booleans(),
    ),
    min_size=1,
    max_size=25,
).map(
    lambda specs: [
        _event(
            CallCenterCall(
                direction="inbound", duration_seconds=60, agent="a", outcome="resolved", topic=tier
            )
            if kind == "call"
            else ProfileUpdated(traits={"tier": tier})
            if kind == "trait"
            else ConsentChanged(contact_channel="email", opted_in=flag),
            minutes,
            n,
        )
        for n, (kind, minutes, tier, flag) in enumerate(specs)
    ]
)


@settings(max_examples=200, deadline=None)
@given(events=events_st, data=st.data())
def test_any_arrival_order_gives_the_same_profile(
    events: list[Envelope], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(events))
    assert profile.fold(None, shuffled) == profile.fold(None, events)


@settings(max_examples=100, deadline=None)
@given(events=events_st, cut=st.integers(0, 25))
def test_folding_in_batches_through_the_row_equals_one_fold(
    events: list[Envelope], cut: int
) -> None:
    first = profile.fold(None, events[:cut])
    restored = from_row(_as_row(to_row(first))) if first else None
    assert profile.fold(restored, events[cut:]) == profile.fold(None, events)


def test_a_late_trait_update_does_not_overwrite_a_newer_one() -> None:
    newer = _event(ProfileUpdated(traits={"city": "Hanoi"}), 60, 1)
    late = _event(ProfileUpdated(traits={"city": "Hue", "age": 31}), 10, 2)
    state = profile.fold(None, [newer, late])
    assert state is not None
    assert {k: v.value for k, v in state.traits.items()} == {"city": "Hanoi", "age": 31}
    assert state.first_seen == late.occurred_at and state.last_seen == newer.occurred_at


def test_counts_and_last_contact_per_channel() -> None:
    call = CallCenterCall(
        direction="inbound", duration_seconds=1, agent="a", outcome="resolved", topic="t"
    )
    state = profile.fold(
        None,
        [
            _event(call, 5, 1),
            _event(call, 1, 2),
            _event(ConsentChanged(contact_channel="email", opted_in=False), 3, 3),
        ],
    )
    assert state is not None
    assert state.channel_counts == {"call_center": 2, "consent": 1}
    assert state.last_contact["call_center"] == T0 + timedelta(minutes=5)
    assert state.consent["email:marketing"].value is False
    assert state.identifiers == {"customer:c-1", "email:c1@example.com"}


class _as_row:
    def __init__(self, data: dict) -> None:  # type: ignore[type-arg]
        self.__dict__.update(data)
