"""Profile data, contact preferences and consent, identity links, and custom events."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from schemas.envelope import Channel, Frozen, Payload
from schemas.payloads.common import Name, Note, Tags

TraitValue = str | int | float | bool | None
TraitKey = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ProfileUpdated(Payload):
    """New values for some traits (name, city, birthday…); a null value clears the trait."""

    event_type = "profile.updated"
    channel = Channel.PROFILE

    traits: dict[TraitKey, TraitValue] = Field(min_length=1, max_length=200)

    @field_validator("traits")
    @classmethod
    def _bounded_strings(cls, traits: dict[str, TraitValue]) -> dict[str, TraitValue]:
        for key, value in traits.items():
            if isinstance(value, str) and len(value) > 2000:
                raise ValueError(f"trait {key!r} is longer than 2000 characters")
        return traits

    def summary(self) -> str:
        return "profile updated: " + ", ".join(sorted(self.traits)[:5])


class QuietHours(Frozen):
    start: time
    end: time
    timezone: Name = "UTC"


class ContactPreferencesSet(Payload):
    """The customer's own choice of how, when and how often they accept contact."""

    event_type = "consent.preferences_set"
    channel = Channel.CONSENT

    allowed_channels: list[Channel] = Field(default_factory=list)
    max_contacts_per_week: int | None = Field(default=None, ge=0, le=100)
    topics: Tags = Field(default_factory=list)
    quiet_hours: QuietHours | None = None

    def summary(self) -> str:
        allowed = ", ".join(c.value for c in self.allowed_channels) or "none"
        return f"contact preferences: channels {allowed}"


class ConsentChanged(Payload):
    """Opt-in or opt-out of one channel for one purpose (marketing, service…)."""

    event_type = "consent.changed"
    channel = Channel.CONSENT

    contact_channel: Channel
    purpose: Name = "marketing"
    opted_in: bool
    legal_basis: Name | None = None

    def summary(self) -> str:
        verb = "opted in to" if self.opted_in else "opted out of"
        return f"{verb} {self.purpose} via {self.contact_channel.value}"


IdentifierText = Annotated[
    str, StringConstraints(min_length=3, max_length=300, pattern=r"^[a-z]+:\S.*$")
]


class IdentityLinked(Payload):
    """Two identifiers ('email:a@b.c', 'anon:123', 'customer:42'…) belong to one customer."""

    event_type = "identity.linked"
    channel = Channel.IDENTITY

    identifier: IdentifierText
    linked_to: IdentifierText
    evidence: Note | None = None

    def summary(self) -> str:
        return f"identity {self.identifier} linked to {self.linked_to}"


class CustomEvent(Payload):
    """Anything a source tracks that has no Rapport type yet (e.g. an unmapped Segment track)."""

    event_type = "custom.event"
    channel = Channel.WEB

    name: Name
    properties: dict[TraitKey, Any] = Field(default_factory=dict, max_length=200)
    tags: Tags = Field(default_factory=list)

    def summary(self) -> str:
        return self.name
