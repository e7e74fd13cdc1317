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
    # Per field of consent.preferences_set ("allowed_channels", "quiet_hours"…): its value,
    # or None where an event cleared it, each with the stamp of the event that set it.
    preferences: Mapping[str, Stamped] = field(default_factory=dict)
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


def merge(customer_id: str, profiles: Iterable[Profile]) -> Profile | None:
    """One customer's profile from the profiles of the keys its events were filed under
    (one per identifier it was known by). Every field is a count, a min/max or
    last-writer-wins in event time, so this equals folding all their events into one."""
    merged: Profile | None = None
    for p in profiles:
        if merged is None:
            merged = replace(p, customer_id=customer_id)
            continue
        m = merged
        merged = replace(
            m,
            identifiers=m.identifiers | p.identifiers,
            traits=_newest(m.traits, p.traits),
            first_seen=_extreme(min, m.first_seen, p.first_seen),
            last_seen=_extreme(max, m.last_seen, p.last_seen),
            events=m.events + p.events,
            channel_counts={
                c: m.channel_counts.get(c, 0) + p.channel_counts.get(c, 0)
                for c in m.channel_counts.keys() | p.channel_counts.keys()
            },
            last_contact={
                c: max(t for t in (m.last_contact.get(c), p.last_contact.get(c)) if t)
                for c in m.last_contact.keys() | p.last_contact.keys()
            },
            preferences=_newest(m.preferences, p.preferences),
            consent=_newest(m.consent, p.consent),
            survey=_newer(m.survey, p.survey),
        )
    return merged


def _newer(a: Stamped | None, b: Stamped | None) -> Stamped | None:
    return b if b is not None and b.newer_than(a) else a


def _newest(a: Mapping[str, Stamped], b: Mapping[str, Stamped]) -> dict[str, Stamped]:
    out = dict(a)
    for key, value in b.items():
        if value.newer_than(out.get(key)):
            out[key] = value
    return out


def _extreme(
    pick: Callable[[datetime, datetime], datetime], a: datetime | None, b: datetime | None
) -> datetime | None:
    return b if a is None else a if b is None else pick(a, b)


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
    """A partial update: each field it sets or clears is last-writer-wins on its own."""
    payload = event.payload
    assert isinstance(payload, ContactPreferencesSet)
    changes: dict[str, Any] = {**payload.stated(), **dict.fromkeys(payload.cleared)}
    preferences = dict(state.preferences)
    for name, value in changes.items():
        candidate = Stamped(value, stamp)
        if candidate.newer_than(preferences.get(name)):
            preferences[name] = candidate
    return replace(state, preferences=preferences)


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
