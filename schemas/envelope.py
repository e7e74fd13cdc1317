"""The envelope every touchpoint travels in.

An event is a past-tense fact: once published it never changes (frozen models). The
envelope carries what every consumer needs to route, dedupe and place the event in time;
the payload carries what is specific to its type.

`Envelope` is the type every consumer sees. Each registered (type, schema_version) has its
own subclass whose `type`, `schema_version` and `payload` are pinned to that type
(`REGISTRY.event_model`), so that decoding is one pass of pydantic-core and the JSON Schema
of every type is exact. `Envelope(...)`, `Envelope.new(...)` and `decode_event(...)` all
return an instance of that subclass.

The registry is the one owner of the type -> model lookup. It is built from the payload
modules, which build on this one, so this module cannot import it: the registry hands
itself to `Envelope.event_models` once it is built (`schemas.registry`), and every lookup
here goes through that.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Protocol, Self, cast

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StringConstraints,
    ValidationError,
    model_validator,
)

from schemas import provenance
from schemas.errors import EventValidationError
from schemas.instant import Instant
from schemas.text import Name

Identifier = Name
Email = Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")]
Phone = Annotated[str, StringConstraints(max_length=32, pattern=r"^\+?[0-9 ()./-]{3,31}$")]


class Channel(StrEnum):
    """The channel a touchpoint happened on; timelines and statistics group by it."""

    CALL_CENTER = "call_center"
    EMAIL = "email"
    SOCIAL = "social"
    COMMUNITY = "community"
    COMMERCE = "commerce"
    SALES = "sales"
    SUPPORT = "support"
    SURVEY = "survey"
    WEB = "web"
    PROFILE = "profile"
    CONSENT = "consent"
    IDENTITY = "identity"
    PRIVACY = "privacy"


class Frozen(BaseModel):
    """Base of every contract model: immutable, strict about unknown fields.

    Sequences are tuples so that nothing inside an event can be changed in place either.
    Mappings stay dicts (Python has no frozen mapping pydantic validates into): treat them
    as read-only.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    # pydantic builds or changes a model without validating it in these few ways; each
    # records the result (schemas.provenance), so that a producer decodes the encoding of
    # an event only while such a model is alive, not every event's.
    @classmethod
    def model_construct(  # type: ignore[override]  # the mypy plugin's signature has no values
        cls, _fields_set: set[str] | None = None, **values: Any
    ) -> Self:
        model = super().model_construct(_fields_set, **values)
        provenance.mark_unvalidated(model)
        return model

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copied = super().model_copy(update=update, deep=deep)
        if update:
            provenance.mark_unvalidated(copied)
        return copied  # without update: as valid as the original (its copy says)

    def __copy__(self) -> Self:
        copied = super().__copy__()
        if provenance.is_unvalidated(self):
            provenance.mark_unvalidated(copied)
        return copied

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        copied = super().__deepcopy__(memo)
        if provenance.is_unvalidated(self):
            provenance.mark_unvalidated(copied)
        return copied

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        if provenance.is_unvalidated(self):
            state[provenance.UNVALIDATED_STATE] = True
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        if state.get(provenance.UNVALIDATED_STATE):
            provenance.mark_unvalidated(self)


class Source(Frozen):
    """Which system emitted the event, and over which channel."""

    system: Name = Field(description="The emitting system, e.g. 'genesys-cloud', 'shopify'.")
    channel: Channel = Field(description="The channel the touchpoint was captured on.")


class CustomerRef(Frozen):
    """Who the event is about: a customer id and/or identifiers that resolve to one."""

    customer_id: Identifier | None = Field(default=None, description="Rapport's customer id.")
    email: Email | None = None
    phone: Phone | None = Field(default=None, description="As dialled; digits and + ( ) . / -")
    external_ids: dict[Identifier, Identifier] = Field(
        default_factory=dict,
        max_length=20,
        description="Ids in other systems, by system name, e.g. {'shopify': '4411'}.",
    )
    social_handles: dict[Identifier, Identifier] = Field(
        default_factory=dict, max_length=20, description="Handles by network, e.g. {'x': '@an'}."
    )
    anonymous_id: Identifier | None = Field(
        default=None, description="A device or cookie id, before the customer is known."
    )

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        # Runs on every decode: test the fields, do not build identifiers().
        if not (
            self.customer_id
            or self.email
            or self.phone
            or self.external_ids
            or self.social_handles
            or self.anonymous_id
        ):
            raise ValueError(
                "a customer reference needs customer_id or at least one identifier "
                "(email, phone, external_ids, social_handles, anonymous_id)"
            )
        return self

    def identifiers(self) -> list[str]:
        """Every identifier as 'kind:value', the strongest first."""
        return list(self.identifier_tuple)

    # The reference is immutable, and a worker asks for its identifiers several times an
    # event (key, identity evidence, profile): computed once. pydantic keeps cached
    # properties out of equality, hashing and serialisation.
    @functools.cached_property
    def identifier_tuple(self) -> tuple[str, ...]:
        """identifiers(), as a tuple computed once."""
        found: list[str] = []
        if self.customer_id:
            found.append(f"customer:{self.customer_id}")
        if self.email:
            found.append(f"email:{self.email.lower()}")
        if self.phone:
            found.append(f"phone:{self.phone}")
        found += [f"ext:{system}:{value}" for system, value in sorted(self.external_ids.items())]
        found += [f"social:{net}:{handle}" for net, handle in sorted(self.social_handles.items())]
        if self.anonymous_id:
            found.append(f"anon:{self.anonymous_id}")
        return tuple(found)

    @functools.cached_property
    def partition_key(self) -> str:
        """The Kafka key: all events of one customer land in one partition, in order."""
        return self.customer_id or self.identifier_tuple[0]


class Payload(Frozen):
    """Base of every payload type: the part of an event specific to its type.

    A concrete payload sets the class variables below, documents its fields with
    `Field(description=...)` and gives one example in
    `model_config = ConfigDict(json_schema_extra={"examples": [...]})`; the example goes into
    the JSON Schema and the catalogue, and seeds the property tests. Register the class in
    `schemas.registry`. A changed shape is a new class with the next `schema_version`; the
    old class stays, superseded, with an upcaster to the new one (see `schemas.registry`).
    """

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    channel: ClassVar[Channel]
    personal_fields: ClassVar[frozenset[str]] = frozenset()
    """Fields that can hold personal data (free text, names, identifiers): producers seal
    them with the customer's data key, erasure shreds them, analysts see them masked
    (`schemas.privacy`)."""

    def summary(self) -> str:
        """One line for a timeline."""
        return self.event_type

    @classmethod
    def examples(cls) -> list[dict[str, Any]]:
        """The documented examples of this payload, in wire form (may be empty)."""
        extra = cls.model_config.get("json_schema_extra")
        found = extra.get("examples") if isinstance(extra, dict) else None
        return [dict(e) for e in found if isinstance(e, dict)] if isinstance(found, list) else []


class EventModels(Protocol):
    """The type -> model lookup the registry provides (see `schemas.registry.Registry`)."""

    def event_model(self, event_type: object, version: int | None = None) -> type[Envelope]: ...

    def current_model(self, event_type: object) -> type[Payload]: ...


class Envelope(Frozen):
    """One touchpoint: envelope fields plus a payload whose model is chosen by `type`."""

    event_models: ClassVar[EventModels]
    """Set by `schemas.registry` once it is built (importing `schemas` builds it)."""

    event_id: uuid.UUID = Field(description="Assigned by the producer; the idempotency key.")
    type: str = Field(description="The event type, e.g. 'call_center.call'.")
    schema_version: int = Field(ge=1, description="Version of the payload schema.")
    occurred_at: Instant = Field(description="Event time: when it happened.")
    received_at: Instant | None = Field(
        default=None, description="Set at ingestion: when Rapport first accepted it."
    )
    source: Source
    customer: CustomerRef
    campaign_id: Identifier | None = Field(
        default=None, description="The marketing campaign the touchpoint belongs to."
    )
    correlation_id: Identifier | None = Field(
        default=None, description="Ties related events together, e.g. the events of one order."
    )
    context: dict[str, Any] | None = Field(
        default=None,
        description="The circumstances as the emitter reported them (device, page, library, "
        "campaign, e.g. Segment's `context`), kept as sent; projections do not interpret it.",
    )
    payload: SerializeAsAny[Payload]

    def __new__(cls, **data: Any) -> Self:
        # `Envelope(type=..., ...)` builds the event model of that type, so every event,
        # however built, has the same class as its decoded copy (and compares equal to it).
        if cls is Envelope:
            if not data:  # model_validate / model_construct on the base: no type to go by
                raise TypeError(
                    "Envelope cannot choose an event model without data: use decode_event, "
                    "event_from_dict or REGISTRY.event_model(type).model_validate"
                )
            model = Envelope.event_models.event_model(data.get("type"))
            return cast(Self, super().__new__(model))
        return super().__new__(cls)

    @classmethod
    def model_validate(cls, obj: Any, **options: Any) -> Self:
        """On Envelope itself: validate as the current event model of `obj['type']`.

        Unlike decode_event this neither upcasts nor raises contract errors.
        """
        if cls is Envelope and isinstance(obj, Mapping):
            model = Envelope.event_models.event_model(obj.get("type"))
            return cast(Self, model.model_validate(obj, **options))
        return super().model_validate(obj, **options)

    @classmethod
    def model_validate_json(cls, json_data: str | bytes | bytearray, **options: Any) -> Self:
        """On Envelope itself: as model_validate, from JSON (decode_event is the fast path)."""
        if cls is Envelope:
            return cls.model_validate(orjson.loads(json_data), **options)
        return super().model_validate_json(json_data, **options)

    def __reduce__(self) -> tuple[Any, ...]:
        # Event models are made at run time, so pickle refers to them by type and version.
        return (_unpickle_event, (self.type, self.schema_version, self.__getstate__()))

    def __hash__(self) -> int:
        return hash(self.event_id)  # the idempotency key; payload dicts are not hashable

    @classmethod
    def new(
        cls,
        payload: Payload,
        *,
        customer: CustomerRef,
        occurred_at: datetime,
        source: Source | None = None,
        event_id: uuid.UUID | None = None,
        campaign_id: str | None = None,
        correlation_id: str | None = None,
        received_at: datetime | None = None,
        context: dict[str, Any] | None = None,
    ) -> Envelope:
        """Build an event around `payload`, filling type, version and a fresh event_id.

        Raises UnknownEventType for a payload class that is not registered and
        EventValidationError, naming each field, value and rule, for anything invalid.
        """
        model = Envelope.event_models.event_model(payload.event_type)
        current = Envelope.event_models.current_model(payload.event_type)
        if type(payload) is not current:
            rule = (
                f"version {payload.schema_version} is superseded: build a {current.__name__} "
                f"(version {current.schema_version})"
                if payload.schema_version != current.schema_version
                else f"{payload.event_type} payloads are {current.__name__}s"
            )
            problem = ("payload", type(payload).__name__, rule)
            raise EventValidationError(payload.event_type, [problem])
        try:
            return model(
                event_id=event_id or uuid.uuid4(),
                type=payload.event_type,
                schema_version=payload.schema_version,
                occurred_at=occurred_at,
                received_at=received_at,
                source=source or Source(system="rapport", channel=payload.channel),
                customer=customer,
                campaign_id=campaign_id,
                correlation_id=correlation_id,
                context=context,
                payload=payload,
            )
        except ValidationError as exc:
            raise EventValidationError.from_pydantic(payload.event_type, exc) from None

    @property
    def channel(self) -> Channel:
        return self.source.channel


def _unpickle_event(event_type: str, version: int, state: dict[Any, Any]) -> Envelope:
    model = Envelope.event_models.event_model(event_type, version)
    event = model.__new__(model)
    event.__setstate__(state)
    return event
