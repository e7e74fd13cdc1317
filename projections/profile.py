"""Customer profile projector: a pure fold `apply(profile, event) -> profile`.

Every field is either commutative (counts, first/last seen) or last-writer-wins by event
time (traits, preferences, consent), so the result does not depend on the order events
arrive in: a late event corrects exactly what it touches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from projections.errors import ProfileTooLarge
from projections.stamped import Stamp, Stamped
from schemas import Envelope
from schemas.payloads.profile import (
    ConsentChanged,
    ContactPreferencesSet,
    IdentityLinked,
    ProfileUpdated,
)
from schemas.payloads.survey import SurveyResponded

# A profile is one row, rewritten by every event of its customer: without a bound, one
# customer's row could grow until each write costs more than a batch. The event that would
# push a profile past a bound is refused (and parked by the worker with this reason).
MAX_IDENTIFIERS = 1_000
MAX_TRAITS = 500


@dataclass(frozen=True)
class Profile:
    customer_id: str
    identifiers: frozenset[str] = frozenset()
    traits: Mapping[str, Stamped] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    events: int = 0
    channel_counts: Mapping[str, int] = field(default_factory=dict)
    last_contact: Mapping[str, datetime] = field(default_factory=dict)
    preferences: Stamped | None = None
    consent: Mapping[str, Stamped] = field(default_factory=dict)  # "channel:purpose" -> bool
    survey: Stamped | None = None  # the latest survey answer (NPS, interests, category spend)


def apply(profile: Profile | None, event: Envelope) -> Profile:
    """Fold one event into the profile of its customer."""
    customer_id = event.customer.partition_key
    state = profile or Profile(customer_id=customer_id)
    channel = event.channel.value
    at = event.occurred_at
    state = replace(
        state,
        identifiers=state.identifiers | set(event.customer.identifiers()),
        first_seen=at if state.first_seen is None else min(state.first_seen, at),
        last_seen=at if state.last_seen is None else max(state.last_seen, at),
        events=state.events + 1,
        channel_counts={**state.channel_counts, channel: state.channel_counts.get(channel, 0) + 1},
        last_contact={
            **state.last_contact,
            channel: max(at, state.last_contact.get(channel, at)),
        },
    )
    specific = _BY_PAYLOAD.get(type(event.payload))
    if specific:
        state = specific(state, event, Stamp(at, str(event.event_id)))
    _check_bounds(state)
    return state


def _check_bounds(state: Profile) -> None:
    if len(state.identifiers) > MAX_IDENTIFIERS:
        raise ProfileTooLarge(state.customer_id, "identifiers", MAX_IDENTIFIERS)
    if len(state.traits) > MAX_TRAITS:
        raise ProfileTooLarge(state.customer_id, "traits", MAX_TRAITS)


def fold(profile: Profile | None, events: Iterable[Envelope]) -> Profile | None:
    for event in events:
        profile = apply(profile, event)
    return profile


def _traits(state: Profile, event: Envelope, stamp: Stamp) -> Profile:
    assert isinstance(event.payload, ProfileUpdated)
    traits = dict(state.traits)
    for key, value in event.payload.traits.items():
        candidate = Stamped(value, stamp)
        if candidate.newer_than(traits.get(key)):
            traits[key] = candidate
    return replace(state, traits=traits)


def _preferences(state: Profile, event: Envelope, stamp: Stamp) -> Profile:
    candidate = Stamped(event.payload.model_dump(mode="json"), stamp)
    if not candidate.newer_than(state.preferences):
        return state
    return replace(state, preferences=candidate)


def _consent(state: Profile, event: Envelope, stamp: Stamp) -> Profile:
    payload = event.payload
    assert isinstance(payload, ConsentChanged)
    key = f"{payload.contact_channel.value}:{payload.purpose}"
    candidate = Stamped(payload.opted_in, stamp)
    if not candidate.newer_than(state.consent.get(key)):
        return state
    return replace(state, consent={**state.consent, key: candidate})


def _identity(state: Profile, event: Envelope, stamp: Stamp) -> Profile:
    payload = event.payload
    assert isinstance(payload, IdentityLinked)
    return replace(state, identifiers=state.identifiers | {payload.identifier, payload.linked_to})


def _survey(state: Profile, event: Envelope, stamp: Stamp) -> Profile:
    candidate = Stamped(event.payload.model_dump(mode="json"), stamp)
    if not candidate.newer_than(state.survey):
        return state
    return replace(state, survey=candidate)


_BY_PAYLOAD: dict[type[Any], Callable[[Profile, Envelope, Stamp], Profile]] = {
    ProfileUpdated: _traits,
    ContactPreferencesSet: _preferences,
    ConsentChanged: _consent,
    IdentityLinked: _identity,
    SurveyResponded: _survey,
}
