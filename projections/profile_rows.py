"""Profile state <-> `customers` row. The JSON shapes here are what analysts see."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from projections.profile import Profile
from projections.stamped import Stamp, Stamped
from schemas.payloads.profile import upcast_preferences_v1_to_v2


def to_row(profile: Profile) -> dict[str, Any]:
    return {
        "customer_id": profile.customer_id,
        "identifiers": sorted(profile.identifiers),
        "traits": {k: _stamped_json(v) for k, v in sorted(profile.traits.items())},
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "events": profile.events,
        "channel_counts": dict(sorted(profile.channel_counts.items())),
        "last_contact": {k: v.isoformat() for k, v in sorted(profile.last_contact.items())},
        "preferences": {k: _stamped_json(v) for k, v in sorted(profile.preferences.items())}
        or None,
        "consent": {k: _stamped_json(v) for k, v in sorted(profile.consent.items())},
        "survey": _stamped_json(profile.survey) if profile.survey else None,
    }


def from_row(row: Any) -> Profile:
    return Profile(
        customer_id=row.customer_id,
        identifiers=frozenset(row.identifiers),
        traits={k: _stamped(v) for k, v in row.traits.items()},
        first_seen=row.first_seen,
        last_seen=row.last_seen,
        events=row.events,
        channel_counts=dict(row.channel_counts),
        last_contact={k: datetime.fromisoformat(v) for k, v in row.last_contact.items()},
        preferences=_preferences(row.preferences),
        consent={k: _stamped(v) for k, v in row.consent.items()},
        survey=_stamped(row.survey) if row.survey else None,
    )


def _stamped_json(stamped: Stamped) -> dict[str, Any]:
    return {"value": stamped.value, **stamped.stamp.to_json()}


def _stamped(data: dict[str, Any]) -> Stamped:
    return Stamped(data["value"], Stamp(datetime.fromisoformat(data["at"]), data["event_id"]))


def _preferences(data: dict[str, Any] | None) -> dict[str, Stamped]:
    """Per-field preferences; a row written before partial updates holds the whole set as
    one stamped value, read the way its event is upcast (every field set or cleared)."""
    if not data:
        return {}
    if "value" in data and "event_id" in data:
        whole = upcast_preferences_v1_to_v2(data["value"])
        stamp = Stamp(datetime.fromisoformat(data["at"]), data["event_id"])
        values = {**whole, **dict.fromkeys(whole.pop("cleared"))}
        return {k: Stamped(v, stamp) for k, v in sorted(values.items())}
    return {k: _stamped(v) for k, v in data.items()}
