"""The envelope every touchpoint travels in.

An event is a past-tense fact: once published it never changes (frozen models). The
envelope carries what every consumer needs to route, dedupe and place the event in time;
the payload carries what is specific to its type.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


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


class Frozen(BaseModel):
    """Base of every contract model: immutable, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Source(Frozen):
    """Which system emitted the event, and over which channel."""

    system: ShortText
    channel: Channel


class CustomerRef(Frozen):
    """Who the event is about: a customer id and/or identifiers that resolve to one."""

    customer_id: Identifier | None = None
    email: (
        Annotated[str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")] | None
    ) = None
    phone: (
        Annotated[str, StringConstraints(max_length=32, pattern=r"^\+?[0-9 ()./-]{3,31}$")] | None
    ) = None
    external_ids: dict[Identifier, Identifier] = Field(default_factory=dict)
    social_handles: dict[Identifier, Identifier] = Field(default_factory=dict)
    anonymous_id: Identifier | None = None

    @model_validator(mode="after")
    def _at_least_one(self) -> Self:
        if not self.identifiers():
            raise ValueError(
                "a customer reference needs customer_id or at least one identifier "
                "(email, phone, external_ids, social_handles, anonymous_id)"
            )
        return self

    def identifiers(self) -> list[str]:
        """Every identifier as 'kind:value', the strongest first."""
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
        return found

    @property
    def partition_key(self) -> str:
        """The Kafka key: all events of one customer land in one partition, in order."""
        return self.customer_id or self.identifiers()[0]


class Payload(Frozen):
    """Base of every payload type. Subclasses set the class variables below."""

    event_type: ClassVar[str]
    schema_version: ClassVar[int] = 1
    channel: ClassVar[Channel]

    def summary(self) -> str:
        """One line for a timeline."""
        return self.event_type


class Envelope(Frozen):
    """One touchpoint: envelope fields plus a payload whose model is chosen by `type`."""

    event_id: uuid.UUID = Field(description="Assigned by the producer; the idempotency key.")
    type: str = Field(description="The event type, e.g. 'call_center.call'.")
    schema_version: int = Field(ge=1, description="Version of the payload schema.")
    occurred_at: AwareDatetime = Field(description="Event time: when it happened.")
    received_at: AwareDatetime | None = Field(
        default=None, description="Set at ingestion: when Rapport first accepted it."
    )
    source: Source
    customer: CustomerRef
    campaign_id: Identifier | None = None
    correlation_id: Identifier | None = None
    context: dict[str, Any] | None = Field(
        default=None,
        description="The circumstances as the emitter reported them (device, page, library, "
        "campaign, e.g. Segment's `context`), kept as sent; projections do not interpret it.",
    )
    payload: SerializeAsAny[Payload]

    @field_validator("payload", mode="before")
    @classmethod
    def _payload_model_for_type(cls, value: Any, info: ValidationInfo) -> Any:
        from schemas.registry import REGISTRY  # the registry imports the payload modules

        event_type = info.data.get("type")
        if event_type is None:
            return value  # `type` itself failed; pydantic reports that
        model = REGISTRY.current_model(event_type)
        if isinstance(value, model):
            return value
        if isinstance(value, Payload):
            raise ValueError(f"payload is a {value.event_type} payload, not {event_type}")
        return model.model_validate(value)

    @model_validator(mode="after")
    def _version_is_current(self) -> Self:
        from schemas.registry import REGISTRY

        current = REGISTRY.current_version(self.type)
        if self.schema_version != current:
            raise ValueError(
                f"schema_version {self.schema_version} of {self.type} must be upcast to "
                f"{current} before validation (decode_event does this)"
            )
        return self

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
        """Build an event around `payload`, filling type, version and a fresh event_id."""
        return cls(
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

    @property
    def channel(self) -> Channel:
        return self.source.channel

    def received(self, at: datetime | None = None) -> Envelope:
        """A copy stamped with the ingestion time (kept if already set)."""
        if self.received_at is not None:
            return self
        return self.model_copy(update={"received_at": at or datetime.now(UTC)})
