"""Engagement: how much, how recently and how warmly a customer interacts, across channels.

Pure, like projections.value: `as_of` is explicit and results carry their lineage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, cast
from uuid import UUID

from projections.errors import ScoringInputError
from projections.lineage import frozen_inputs, happened_by, require_aware, source_event_ids
from schemas import Channel, Envelope, Payload
from schemas.payloads.call_center import CallCenterCall, CallOutcome
from schemas.payloads.email import EmailBounced, EmailDelivered, EmailSent, EmailUnsubscribed
from schemas.payloads.sales import MeetingCancelled, SalesApproached
from schemas.payloads.support import TicketResolved, TicketUpdated

# Starting points, to tune per business: talking to us weighs most, passive reading least.
DEFAULT_CHANNEL_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        Channel.CALL_CENTER.value: 1.0,
        Channel.SALES.value: 1.0,
        Channel.SURVEY.value: 1.0,
        Channel.COMMERCE.value: 1.0,
        Channel.COMMUNITY.value: 0.8,
        Channel.SOCIAL.value: 0.5,
        Channel.SUPPORT.value: 0.5,
        Channel.EMAIL.value: 0.3,
        Channel.WEB.value: 0.2,
    }
)

# Events that record what the firm did, or that the customer did not take part in.
_NOT_THE_CUSTOMERS_DOING: frozenset[type[Payload]] = frozenset(
    {
        EmailSent,
        EmailDelivered,
        EmailBounced,
        EmailUnsubscribed,
        SalesApproached,
        MeetingCancelled,
        TicketUpdated,
        TicketResolved,
    }
)
_UNREACHED = frozenset({CallOutcome.NO_ANSWER, CallOutcome.VOICEMAIL})
_BOOKKEEPING_CHANNELS = frozenset({Channel.PROFILE, Channel.CONSENT, Channel.IDENTITY})


@dataclass(frozen=True)
class Interaction:
    """Something the customer did on a channel; `sentiment` in [-1, 1] when it was scored."""

    occurred_at: datetime
    channel: str
    sentiment: float | None = None
    event_id: UUID | None = None

    def __post_init__(self) -> None:
        require_aware("Interaction.occurred_at", self.occurred_at)
        if self.sentiment is not None and not -1.0 <= self.sentiment <= 1.0:
            raise ScoringInputError(f"Interaction.sentiment={self.sentiment}: must be in [-1, 1]")


def interaction_from_event(event: Envelope) -> Interaction | None:
    """The customer's interaction in `event`, or None when the event is not one.

    Not interactions: what the firm did alone (e-mails sent or delivered, bounces, sales
    approaches, ticket updates and resolutions), unsubscribes and cancelled meetings,
    calls that never reached the customer (no answer, voicemail), and profile, consent
    and identity bookkeeping.
    """
    payload = event.payload
    if type(payload) in _NOT_THE_CUSTOMERS_DOING or event.channel in _BOOKKEEPING_CHANNELS:
        return None
    if type(payload) is CallCenterCall and payload.outcome in _UNREACHED:
        return None
    # Payloads forbid extra fields, so the class says whether there is one; getattr with a
    # default would go through pydantic's __getattr__ and an AttributeError (a few µs).
    sentiment = cast(Any, payload).sentiment if "sentiment" in type(payload).model_fields else None
    return Interaction(
        occurred_at=event.occurred_at,
        channel=event.channel.value,
        sentiment=float(sentiment) if isinstance(sentiment, int | float) else None,
        event_id=event.event_id,
    )


@dataclass(frozen=True)
class EngagementParameters:
    """half_life_days: an interaction that old counts half. channel_weights: per channel
    (Channel values); channels not listed weigh unknown_channel_weight.
    sentiment_sensitivity k in [0, 1]: how far sentiment moves an interaction's weight."""

    half_life_days: float = 30.0
    channel_weights: Mapping[str, float] = field(
        default_factory=lambda: dict(DEFAULT_CHANNEL_WEIGHTS)
    )
    unknown_channel_weight: float = 0.0
    sentiment_sensitivity: float = 1.0

    def __post_init__(self) -> None:
        if not self.half_life_days > 0:
            raise ScoringInputError(
                f"EngagementParameters.half_life_days={self.half_life_days}: must be > 0"
            )
        if not 0.0 <= self.sentiment_sensitivity <= 1.0:
            raise ScoringInputError(
                "EngagementParameters.sentiment_sensitivity="
                f"{self.sentiment_sensitivity}: must be in [0, 1]"
            )
        weights = {**self.channel_weights, "(unknown channel)": self.unknown_channel_weight}
        for channel, weight in weights.items():
            if weight < 0:
                raise ScoringInputError(f"channel weight {channel}={weight}: must be >= 0")

    def weight(self, channel: str) -> float:
        return self.channel_weights.get(channel, self.unknown_channel_weight)


DEFAULT_ENGAGEMENT = EngagementParameters()


@dataclass(frozen=True)
class EngagementScore:
    value: float
    by_channel: Mapping[str, float]
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]


def engagement_score(
    interactions: Iterable[Interaction],
    *,
    as_of: datetime,
    params: EngagementParameters = DEFAULT_ENGAGEMENT,
) -> EngagementScore:
    """engagement = sum_i w(channel_i) * 0.5 ** (age_i / half_life) * (1 + k * s_i)

    age_i = as_of - occurred_at_i in days; s_i = the interaction's sentiment, 0 when not
    scored; k = sentiment_sensitivity. With k <= 1 a contribution stays within
    [0, 2 * w]: a glowing comment counts up to double, a hostile one down to nothing,
    and the score is never negative. Interactions after as_of are ignored; channels of
    weight 0 do not count (and do not feed the lineage).
    """
    require_aware("as_of", as_of)
    observed, ignored = happened_by(interactions, as_of)
    by_channel: dict[str, float] = {}
    counted: list[Interaction] = []
    for interaction in observed:
        weight = params.weight(interaction.channel)
        if weight == 0:
            continue
        age_days = (as_of - interaction.occurred_at) / timedelta(days=1)
        decay = 0.5 ** (age_days / params.half_life_days)
        warmth = 1.0 + params.sentiment_sensitivity * (interaction.sentiment or 0.0)
        contribution = weight * decay * warmth
        by_channel[interaction.channel] = by_channel.get(interaction.channel, 0.0) + contribution
        counted.append(interaction)
    return EngagementScore(
        value=sum(by_channel.values()),
        by_channel=MappingProxyType(dict(sorted(by_channel.items()))),
        inputs=frozen_inputs(
            as_of=as_of,
            half_life_days=params.half_life_days,
            channel_weights=MappingProxyType(dict(params.channel_weights)),
            unknown_channel_weight=params.unknown_channel_weight,
            sentiment_sensitivity=params.sentiment_sensitivity,
            interactions=len(counted),
            interactions_not_weighted=len(observed) - len(counted),
            interactions_after_as_of=ignored,
        ),
        event_ids=source_event_ids(counted),
    )
