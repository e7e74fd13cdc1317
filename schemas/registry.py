"""Which payload model serves each (type, schema_version), and how old versions upcast.

Every type has versions 1..current. The current model is what producers build and what
consumers see; each older, superseded model stays registered so that history written under
it still validates (and its JSON Schema can still be exported), together with an upcaster:
a small pure function from a valid payload of version N, in wire form (a JSON-decoded
dict), to the wire form of version N+1. Decoding an old event validates its payload against
its own version, then walks the chain up to the current version.

The registry is built once, from the tables at the bottom of this module, and checks itself
then: a gap in a type's versions or a missing upcaster fails at import, not at replay.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from pydantic import Field, TypeAdapter, create_model

from schemas.envelope import Envelope, Payload
from schemas.errors import RegistryError, UnknownEventType
from schemas.payloads import (
    call_center,
    commerce,
    email,
    privacy,
    profile,
    sales,
    social,
    support,
    survey,
    web,
)
from schemas.provenance import register_event_models

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Superseded:
    """An older version of a payload type, and how to bring its payloads one version up."""

    model: type[Payload]
    upcast: Upcaster


@dataclass(frozen=True)
class EventType:
    """Every version of one event type."""

    name: str
    models: dict[int, type[Payload]]  # version -> payload model, 1..current
    upcasters: dict[int, Upcaster]  # version N -> its upcaster to N+1
    event_models: dict[int, type[Envelope]]  # version -> envelope subclass pinned to it

    @property
    def current_version(self) -> int:
        return max(self.models)

    @property
    def current_model(self) -> type[Payload]:
        return self.models[self.current_version]


class Registry:
    """The event types of the contract, by name and version."""

    def __init__(
        self, current: Iterable[type[Payload]], superseded: Iterable[Superseded] = ()
    ) -> None:
        models: dict[str, dict[int, type[Payload]]] = {}
        upcasters: dict[str, dict[int, Upcaster]] = {}
        for model in current:
            if model.event_type in models:
                raise RegistryError(f"{model.event_type} is registered twice")
            models[model.event_type] = {model.schema_version: model}
            upcasters[model.event_type] = {}
        for old in superseded:
            name, version = old.model.event_type, old.model.schema_version
            if name not in models:
                raise RegistryError(f"{old.model.__name__} supersedes unregistered type {name}")
            if version in models[name]:
                raise RegistryError(f"{name} has two models for version {version}")
            models[name][version] = old.model
            upcasters[name][version] = old.upcast
        self._types: dict[str, EventType] = {}
        for name in sorted(models):
            versions = models[name]
            current_version = max(versions)
            if sorted(versions) != list(range(1, current_version + 1)):
                raise RegistryError(f"{name} has versions {sorted(versions)}, not 1..N")
            if sorted(upcasters[name]) != list(range(1, current_version)):
                raise RegistryError(f"{name} needs an upcaster from each superseded version")
            self._types[name] = EventType(
                name=name,
                models=versions,
                upcasters=upcasters[name],
                event_models={v: _event_model(model) for v, model in versions.items()},
            )
        any_current_event: Any = Annotated[
            Union[tuple(self.event_model(name) for name in self._types)],  # noqa: UP007
            Field(discriminator="type"),
        ]
        self.current_events: TypeAdapter[Envelope] = TypeAdapter(any_current_event)
        """Validates an event of any type, at its current version, in one pydantic-core pass."""

    def entry(self, event_type: object) -> EventType:
        """Every version of `event_type`; raises UnknownEventType listing the known ones."""
        entry = self._types.get(event_type) if isinstance(event_type, str) else None
        if entry is None:
            raise UnknownEventType(event_type, self._types)
        return entry

    def known_types(self) -> list[str]:
        return list(self._types)

    def types(self) -> list[EventType]:
        return list(self._types.values())

    def models(self) -> list[type[Payload]]:
        """The current payload model of every type, by type name."""
        return [entry.current_model for entry in self._types.values()]

    def all_models(self) -> list[type[Payload]]:
        """Every payload model, superseded ones included, by type name and version."""
        return [
            model for entry in self._types.values() for _, model in sorted(entry.models.items())
        ]

    def current_model(self, event_type: object) -> type[Payload]:
        return self.entry(event_type).current_model

    def current_version(self, event_type: object) -> int:
        return self.entry(event_type).current_version

    def model(self, event_type: object, version: int) -> type[Payload]:
        entry = self.entry(event_type)
        if version not in entry.models:
            raise UnknownEventType(event_type, [str(v) for v in entry.models], version)
        return entry.models[version]

    def event_model(self, event_type: object, version: int | None = None) -> type[Envelope]:
        """The envelope subclass of `event_type` at `version` (default: the current one)."""
        entry = self.entry(event_type)
        if version is None:
            return entry.event_models[entry.current_version]
        if version not in entry.event_models:
            raise UnknownEventType(event_type, [str(v) for v in entry.models], version)
        return entry.event_models[version]

    def upcast(self, event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
        """Bring a wire-form payload of `version` up to the current version of its type."""
        entry = self.entry(event_type)
        self.model(event_type, version)  # an unknown version raises, listing the known ones
        for step in range(version, entry.current_version):
            payload = entry.upcasters[step](payload)
        return payload


def _event_model(payload: type[Payload]) -> type[Envelope]:
    """The envelope subclass whose type, version and payload are pinned to `payload`."""
    suffix = "" if payload.__name__.endswith("Event") else "Event"
    # Types computed at run time: mypy cannot check these, pydantic does.
    pinned_type: Any = Literal[payload.event_type]
    pinned_version: Any = Literal[payload.schema_version]
    return create_model(
        f"{payload.__name__}{suffix}",
        __base__=Envelope,
        __module__=__name__,
        __doc__=(payload.__doc__ or f"A {payload.event_type} event.").strip(),
        type=(pinned_type, Field(description="The event type.")),
        schema_version=(pinned_version, Field(description="Version of the payload schema.")),
        payload=(payload, ...),
    )


CURRENT_PAYLOADS: list[type[Payload]] = [
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
    profile.IdentityUnlinked,
    profile.CustomEvent,
    privacy.CustomerErased,
]

SUPERSEDED_PAYLOADS: list[Superseded] = [
    Superseded(call_center.CallCenterCallV1, upcast=call_center.upcast_v1_to_v2),
    Superseded(profile.IdentityLinkedV1, upcast=profile.upcast_identity_linked_v1_to_v2),
    Superseded(profile.ContactPreferencesSetV1, upcast=profile.upcast_preferences_v1_to_v2),
]

REGISTRY = Registry(CURRENT_PAYLOADS, SUPERSEDED_PAYLOADS)
Envelope.event_models = REGISTRY  # the lookup `Envelope(...)` and `Envelope.new` go through
# Events a producer encodes without decoding them, when nothing changed them since they were
# validated (schemas.codec.encode_verified); events of any other model are decoded.
NOT_VOUCHED_FOR = register_event_models([REGISTRY.event_model(t) for t in REGISTRY.known_types()])
