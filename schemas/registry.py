"""Which payload model serves each (type, schema_version), and how old versions upcast.

An upcaster is a small pure function from the payload dict of version N to version N+1.
Decoding walks the chain, so history written under version 1 still validates today.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.envelope import Payload
from schemas.errors import UnknownEventType
from schemas.payloads import (
    call_center,
    commerce,
    email,
    profile,
    sales,
    social,
    support,
    survey,
    web,
)

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class _TypeEntry:
    current: type[Payload]
    upcasters: dict[int, Upcaster] = field(default_factory=dict)  # from version N to N+1


class Registry:
    def __init__(self, models: Iterable[type[Payload]] = ()) -> None:
        self._types: dict[str, _TypeEntry] = {}
        for model in models:
            self.register(model)

    def register(self, model: type[Payload]) -> None:
        self._types[model.event_type] = _TypeEntry(current=model)

    def register_upcaster(self, event_type: str, from_version: int, upcast: Upcaster) -> None:
        self._entry(event_type).upcasters[from_version] = upcast

    def _entry(self, event_type: object) -> _TypeEntry:
        entry = self._types.get(event_type) if isinstance(event_type, str) else None
        if entry is None:
            raise UnknownEventType(event_type, self._types)
        return entry

    def known_types(self) -> list[str]:
        return sorted(self._types)

    def models(self) -> list[type[Payload]]:
        return [self._types[name].current for name in self.known_types()]

    def current_model(self, event_type: object) -> type[Payload]:
        return self._entry(event_type).current

    def current_version(self, event_type: object) -> int:
        return self._entry(event_type).current.schema_version

    def upcast(self, event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        """Bring a payload of `version` up to the current version of its type."""
        entry = self._entry(event_type)
        current = entry.current.schema_version
        if not 1 <= version <= current:
            raise UnknownEventType(event_type, [str(v) for v in range(1, current + 1)], version)
        for step in range(version, current):
            payload = entry.upcasters[step](payload)
        return payload


ALL_PAYLOADS: list[type[Payload]] = [
    call_center.CallCenterCall,
    email.EmailSent,
    email.EmailDelivered,
    email.EmailOpened,
    email.EmailClicked,
    email.EmailReplied,
    email.EmailBounced,
    email.EmailUnsubscribed,
    social.SocialLiked,
    social.SocialShared,
    social.SocialCommented,
    social.SocialFollowed,
    social.SocialMentioned,
    social.CommunityMentioned,
    commerce.Purchased,
    commerce.Refunded,
    sales.SalesApproached,
    sales.AppointmentSet,
    sales.MeetingHeld,
    sales.MeetingCancelled,
    support.TicketOpened,
    support.TicketUpdated,
    support.TicketResolved,
    survey.SurveyResponded,
    web.WebVisited,
    web.PageViewed,
    web.FormSubmitted,
    profile.ProfileUpdated,
    profile.ContactPreferencesSet,
    profile.ConsentChanged,
    profile.IdentityLinked,
    profile.CustomEvent,
]

REGISTRY = Registry(ALL_PAYLOADS)
