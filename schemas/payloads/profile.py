"""Profile data, contact preferences and consent, identity links, and custom events."""

from __future__ import annotations

from datetime import time
from typing import Annotated, Any, Self

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


class IdentityLinkedV1(Payload):
    """Two identifiers belong to one customer (superseded by version 2, which can force)."""

    event_type = "identity.linked"
    schema_version = 1
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


def upcast_identity_linked_v1_to_v2(v1: dict[str, Any]) -> dict[str, Any]:
    """Version 1 links were never forced."""
    return {**v1, "forced": False}


class IdentityLinked(Payload):
    """Two identifiers ('email:a@b.c', 'anon:123', 'customer:42'…) belong to one customer.

    A link that would join two different customer ids is refused (and shown with its
    reason by `rapport identity show`) unless it is `forced`: an operator's decision that
    two customer records are one person."""

    event_type = "identity.linked"
    schema_version = 2
    channel = Channel.IDENTITY
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "identifier": "anon:9f2c1e",
                    "linked_to": "email:linh.tran@example.com",
                    "evidence": "logged in on the web shop",
                    "forced": False,
                }
            ]
        }
    )

    identifier: IdentifierText = Field(description="'kind:value', e.g. 'anon:9f2c1e'.")
    linked_to: IdentifierText = Field(description="'kind:value' of the same customer.")
    evidence: Note | None = Field(default=None, description="Why they are the same person.")
    forced: bool = Field(
        default=False,
        description="Join even two different customer ids (an operator's decision).",
    )

    @model_validator(mode="after")
    def _two_identifiers(self) -> Self:
        if self.identifier == self.linked_to:
            raise ValueError("an identifier cannot be linked to itself")
        return self

    def summary(self) -> str:
        forced = " (forced)" if self.forced else ""
        return f"identity {self.identifier} linked to {self.linked_to}{forced}"


class IdentityUnlinked(Payload):
    """Two identifiers do not belong together: the link between them is undone, as if it had
    never been made (later evidence can link them again)."""

    event_type = "identity.unlinked"
    channel = Channel.IDENTITY
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "identifier": "phone:+84900000016",
                    "unlinked_from": "customer:cust-000016",
                    "reason": "a family phone: the call was the customer's brother",
                }
            ]
        }
    )

    identifier: IdentifierText = Field(description="'kind:value', e.g. 'phone:+84900000016'.")
    unlinked_from: IdentifierText = Field(description="'kind:value' it was linked to.")
    reason: Note = Field(min_length=1, description="Why the link was wrong.")

    @model_validator(mode="after")
    def _two_identifiers(self) -> Self:
        if self.identifier == self.unlinked_from:
            raise ValueError("an identifier cannot be unlinked from itself")
        return self

    def summary(self) -> str:
        return f"identity {self.identifier} unlinked from {self.unlinked_from}: {self.reason}"


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
