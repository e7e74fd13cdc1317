"""Profile data, contact preferences and consent, identity links, and custom events."""

from __future__ import annotations

import zoneinfo
from datetime import time
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

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
    personal_fields = frozenset({"traits"})
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


IANA_ZONES = frozenset(zoneinfo.available_timezones())


def known_zone(name: str) -> str:
    if name not in IANA_ZONES:
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. 'Europe/Berlin')")
    return name


ZoneName = Annotated[
    str,
    AfterValidator(known_zone),
    WithJsonSchema(
        {"type": "string", "enum": sorted(IANA_ZONES), "description": "IANA time zone name."}
    ),
]


class QuietHoursV1(Frozen):
    """Quiet hours as version 1 of `consent.preferences_set` took them (zone unchecked)."""

    start: time = Field(description="Local start time, e.g. '21:00'.")
    end: time = Field(description="Local end time, e.g. '08:00' (may be the next day).")
    timezone: Name = Field(default="UTC", description="IANA time zone, e.g. 'Asia/Ho_Chi_Minh'.")


class QuietHours(Frozen):
    """A daily window, in the customer's own time zone, in which they do not want contact."""

    start: time = Field(description="Local start time, e.g. '21:00'.")
    end: time = Field(description="Local end time, e.g. '08:00' (the next day when earlier).")
    timezone: ZoneName = Field(
        default="UTC", description="An IANA time zone name, e.g. 'Asia/Ho_Chi_Minh'."
    )

    @model_validator(mode="after")
    def _a_window(self) -> Self:
        if self.start == self.end:
            raise ValueError("start and end are equal: quiet hours need a window")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("start and end are local times: give the zone in 'timezone'")
        return self

    def covers(self, local: time) -> bool:
        """Whether a local wall-clock time falls in the window (which may pass midnight)."""
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


class ContactPreferencesSetV1(Payload):
    """Version 1: the whole set of preferences at once (superseded by version 2, which
    changes only the fields it names)."""

    event_type = "consent.preferences_set"
    schema_version = 1
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
    quiet_hours: QuietHoursV1 | None = None


PREFERENCE_FIELDS = (
    "allowed_channels",
    "max_contacts_per_week",
    "topics",
    "unwanted_topics",
    "quiet_hours",
)
PreferenceField = Literal[
    "allowed_channels", "max_contacts_per_week", "topics", "unwanted_topics", "quiet_hours"
]


def upcast_preferences_v1_to_v2(v1: dict[str, Any]) -> dict[str, Any]:
    """A v1 event stated the whole set: every field is set or cleared in v2.

    v1 could not tell "no channel stated" from "no channel allowed" (both an empty list, the
    default), so an empty list becomes not stated; its only way to say "no contact" was a
    weekly cap of 0, which becomes an empty list of allowed channels (v2's caps start at 1).
    Quiet hours whose start equals their end covered no time, and a zone that is no IANA
    zone named no clock to keep them by: both are read as no quiet hours.
    """
    v2: dict[str, Any] = {}
    channels = v1.get("allowed_channels") or []
    cap = v1.get("max_contacts_per_week")
    if cap == 0:
        v2["allowed_channels"] = []
    elif channels:
        v2["allowed_channels"] = channels
    if cap:
        v2["max_contacts_per_week"] = cap
    if v1.get("topics"):
        v2["topics"] = v1["topics"]
    quiet = v1.get("quiet_hours")
    if (
        quiet
        and time.fromisoformat(str(quiet["start"])) != time.fromisoformat(str(quiet["end"]))
        and quiet.get("timezone", "UTC") in IANA_ZONES
    ):
        v2["quiet_hours"] = quiet
    v2["cleared"] = [f for f in PREFERENCE_FIELDS if f not in v2]
    return v2


class ContactPreferencesSet(Payload):
    """How, when, how often and about what the customer accepts contact.

    Only the fields an event names change: a field left out keeps its value, a field sent
    as null is cleared (back to "not stated"; on the wire it is listed in `cleared`). An
    empty list of allowed channels says "no contact on any channel". Refused: an event
    that sets or clears nothing, a field both set and cleared, a weekly cap beside an
    empty list of allowed channels, a topic both wanted and unwanted, quiet hours whose
    start equals their end or whose zone is not an IANA zone."""

    event_type = "consent.preferences_set"
    schema_version = 2
    channel = Channel.CONSENT
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "allowed_channels": ["email", "sales"],
                    "max_contacts_per_week": 2,
                    "topics": ["offers", "new products"],
                    "unwanted_topics": ["win-back"],
                    "quiet_hours": {
                        "start": "21:00:00",
                        "end": "08:00:00",
                        "timezone": "Asia/Ho_Chi_Minh",
                    },
                },
                {"quiet_hours": {"start": "22:00:00", "end": "07:00:00"}},
                {"cleared": ["max_contacts_per_week"]},
            ],
            # The cross-field rules JSON Schema can say (the decoder checks them all).
            "minProperties": 1,
            "not": {
                "required": ["allowed_channels", "max_contacts_per_week"],
                "properties": {"allowed_channels": {"maxItems": 0}},
            },
        }
    )

    allowed_channels: tuple[Channel, ...] | None = Field(
        default=None,
        max_length=len(Channel),
        description="Channels the customer accepts contact on; [] for none.",
    )
    max_contacts_per_week: int | None = Field(
        default=None, ge=1, le=100, description="At most this many contacts in any 7 days."
    )
    topics: Tags | None = Field(default=None, description="Topics the customer wants.")
    unwanted_topics: Tags | None = Field(
        default=None, description="Topics the customer does not want to hear about."
    )
    quiet_hours: QuietHours | None = None
    cleared: tuple[PreferenceField, ...] = Field(
        default=(),
        max_length=len(PREFERENCE_FIELDS),
        description="Fields cleared back to not stated (what a null sets).",
    )

    @model_validator(mode="before")
    @classmethod
    def _nulls_clear(cls, data: Any) -> Any:
        """An explicit null clears its field: it is kept as a name in `cleared`, since the
        wire omits nulls (schemas/codec.py)."""
        if not isinstance(data, dict):
            return data
        nulls = [f for f in PREFERENCE_FIELDS if f in data and data[f] is None]
        if not nulls:
            return data
        kept = {k: v for k, v in data.items() if k not in nulls}
        cleared = kept.get("cleared") or ()
        if not isinstance(cleared, list | tuple):
            return data  # let field validation name the problem
        kept["cleared"] = (*cleared, *(f for f in nulls if f not in cleared))
        return kept

    @model_validator(mode="after")
    def _coherent(self) -> Self:
        stated = self.stated()
        if not stated and not self.cleared:
            raise ValueError("sets or clears no preference")
        if both := sorted(set(stated) & set(self.cleared)):
            raise ValueError(f"{', '.join(both)}: both set and cleared")
        if len(set(self.cleared)) != len(self.cleared):
            raise ValueError("cleared names a field twice")
        if self.allowed_channels == () and self.max_contacts_per_week is not None:
            raise ValueError(
                "max_contacts_per_week: a weekly cap says nothing when no channel is allowed"
            )
        if both := sorted(set(self.topics or ()) & set(self.unwanted_topics or ())):
            raise ValueError(f"topics both wanted and unwanted: {', '.join(both)}")
        return self

    def stated(self) -> dict[str, Any]:
        """The fields this event sets, with their values (wire form)."""
        return {
            f: value
            for f in PREFERENCE_FIELDS
            if (value := self.model_dump(mode="json", include={f}).get(f)) is not None
        }

    def summary(self) -> str:
        parts = []
        if self.allowed_channels is not None:
            allowed = ", ".join(c.value for c in self.allowed_channels) or "none"
            parts.append(f"channels {allowed}")
        if self.max_contacts_per_week is not None:
            parts.append(f"at most {self.max_contacts_per_week} a week")
        if self.quiet_hours is not None:
            q = self.quiet_hours
            parts.append(f"quiet {q.start:%H:%M}–{q.end:%H:%M} {q.timezone}")
        if self.topics is not None:
            parts.append("wants " + (", ".join(self.topics) or "no topic"))
        if self.unwanted_topics:
            parts.append("not " + ", ".join(self.unwanted_topics))
        if self.cleared:
            parts.append("cleared " + ", ".join(self.cleared))
        return "contact preferences: " + "; ".join(parts)


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
    personal_fields = frozenset({"identifier", "linked_to", "evidence"})
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
    personal_fields = frozenset({"identifier", "linked_to", "evidence"})
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
    personal_fields = frozenset({"identifier", "unlinked_from", "reason"})
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
    personal_fields = frozenset({"properties"})
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
