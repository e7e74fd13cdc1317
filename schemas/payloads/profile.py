"""Profile data, contact preferences and consent, identity links, and custom events."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Self

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from schemas.envelope import Channel, Frozen, Payload
from schemas.payloads.common import (
    FreeValue,
    FreeValueKey,
    Tags,
    check_free_integers,
    check_free_values,
)
from schemas.text import Name, Note

TraitValue = FreeValue
TraitKey = FreeValueKey


class ProfileUpdated(Payload):
    """New values for some traits (name, city, birthday…); a null value clears the trait."""

    event_type = "profile.updated"
    channel = Channel.PROFILE
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"traits": {"city": "Da Nang", "loyalty_member": True, "nickname": None}}]
        }
    )

    traits: dict[TraitKey, TraitValue] = Field(
        min_length=1,
        max_length=200,
        description="Trait name to new value (text, number, true/false, or null to clear).",
    )

    _bounded_integers = field_validator("traits", mode="before")(check_free_integers)
    _bounded_strings = field_validator("traits")(check_free_values)

    def summary(self) -> str:
        return "profile updated: " + ", ".join(sorted(self.traits)[:5])


class QuietHours(Frozen):
    """A daily window in which the customer does not want to be contacted."""

    start: time = Field(description="Local start time, e.g. '21:00'.")
    end: time = Field(description="Local end time, e.g. '08:00' (may be the next day).")
    timezone: Name = Field(default="UTC", description="IANA time zone, e.g. 'Asia/Ho_Chi_Minh'.")


class ContactPreferencesSet(Payload):
    """The customer's own choice of how, when and how often they accept contact."""

    event_type = "consent.preferences_set"
    channel = Channel.CONSENT
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "allowed_channels": ["email", "sales"],
                    "max_contacts_per_week": 2,
                    "topics": ["offers", "new products"],
                    "quiet_hours": {
                        "start": "21:00:00",
                        "end": "08:00:00",
                        "timezone": "Asia/Ho_Chi_Minh",
                    },
                }
            ]
        }
    )

    allowed_channels: tuple[Channel, ...] = Field(
        default=(), max_length=len(Channel), description="Channels the customer accepts."
    )
    max_contacts_per_week: int | None = Field(
        default=None, ge=0, le=100, description="At most this many contacts a week."
    )
    topics: Tags = Field(default=(), description="Topics the customer wants to hear about.")
    quiet_hours: QuietHours | None = None

    def summary(self) -> str:
        allowed = ", ".join(c.value for c in self.allowed_channels) or "none"
        return f"contact preferences: channels {allowed}"


class ConsentChanged(Payload):
    """Opt-in or opt-out of one channel for one purpose (marketing, service…)."""

    event_type = "consent.changed"
    channel = Channel.CONSENT
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "contact_channel": "email",
                    "purpose": "marketing",
                    "opted_in": False,
                    "legal_basis": "consent withdrawn via unsubscribe link",
                }
            ]
        }
    )

    contact_channel: Channel = Field(description="The channel the consent is about.")
    purpose: Name = Field(default="marketing", description="e.g. 'marketing', 'service'.")
    opted_in: bool = Field(description="true: opted in; false: opted out.")
    legal_basis: Name | None = Field(default=None, description="As the privacy team records it.")

    def summary(self) -> str:
        verb = "opted in to" if self.opted_in else "opted out of"
        return f"{verb} {self.purpose} via {self.contact_channel.value}"


IdentifierText = Annotated[
    str, StringConstraints(min_length=3, max_length=300, pattern=r"^[a-z]+:[^\s\x00][^\x00]*$")
]


class IdentityLinked(Payload):
    """Two identifiers ('email:a@b.c', 'anon:123', 'customer:42'…) belong to one customer."""

    event_type = "identity.linked"
    channel = Channel.IDENTITY
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "identifier": "anon:9f2c1e",
                    "linked_to": "email:linh.tran@example.com",
                    "evidence": "logged in on the web shop",
                }
            ]
        }
    )

    identifier: IdentifierText = Field(description="'kind:value', e.g. 'anon:9f2c1e'.")
    linked_to: IdentifierText = Field(description="'kind:value' of the same customer.")
    evidence: Note | None = Field(default=None, description="Why they are the same person.")

    @model_validator(mode="after")
    def _two_identifiers(self) -> Self:
        if self.identifier == self.linked_to:
            raise ValueError("an identifier cannot be linked to itself")
        return self

    def summary(self) -> str:
        return f"identity {self.identifier} linked to {self.linked_to}"


class CustomEvent(Payload):
    """Anything a source tracks that has no Rapport type yet (e.g. an unmapped Segment track)."""

    event_type = "custom.event"
    channel = Channel.WEB
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "wishlist_added",
                    "properties": {"sku": "DRL-18V", "price": 129.9, "in_stock": True},
                    "tags": ["segment"],
                }
            ]
        }
    )

    name: Name = Field(description="The source's name for the event.")
    properties: dict[FreeValueKey, FreeValue] = Field(
        default_factory=dict,
        max_length=200,
        description="The source's properties (text, number, true/false or null).",
    )
    tags: Tags = Field(default=(), description="Free tags, e.g. the source's name.")

    _bounded_integers = field_validator("properties", mode="before")(check_free_integers)
    _bounded_strings = field_validator("properties")(check_free_values)

    def summary(self) -> str:
        return self.name
