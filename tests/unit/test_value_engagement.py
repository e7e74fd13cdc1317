"""Engagement: time-decayed, channel-weighted, sentiment-aware."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.engagement import (
    EngagementParameters,
    Interaction,
    engagement_score,
    interaction_from_event,
)
from projections.errors import ScoringInputError
from schemas import CustomerRef, Envelope
from schemas.payloads.call_center import CallCenterCall, CallDirection, CallOutcome
from schemas.payloads.email import EmailOpened, EmailSent
from schemas.payloads.social import SocialCommented
from tests.unit.value_factories import day

AS_OF = day(100)
PARAMS = EngagementParameters(
    half_life_days=10, channel_weights={"email": 0.5, "social": 1.0}, unknown_channel_weight=0
)


def _touch(on: float, channel: str, sentiment: float | None = None) -> Interaction:
    return Interaction(day(on), channel, sentiment, uuid.uuid4())


def test_formula_decay_weight_and_sentiment() -> None:
    score = engagement_score(
        [
            _touch(100, "email"),  # now, weight 0.5
            _touch(90, "social", 0.5),  # one half-life ago, warm: 1 * 0.5 * 1.5
            _touch(80, "social", -1.0),  # hostile: counts nothing
            _touch(99, "fax"),  # unlisted channel, weight 0
            _touch(101, "email"),  # after as_of
        ],
        as_of=AS_OF,
        params=PARAMS,
    )
    assert score.value == pytest.approx(0.5 + 0.75)
    assert dict(score.by_channel) == pytest.approx({"email": 0.5, "social": 0.75})
    assert score.inputs["interactions"] == 3
    assert score.inputs["interactions_not_weighted"] == 1
    assert score.inputs["interactions_after_as_of"] == 1
    assert len(score.event_ids) == 3


def test_sentiment_sensitivity_zero_ignores_sentiment() -> None:
    params = EngagementParameters(half_life_days=10, sentiment_sensitivity=0.0)
    warm = engagement_score([_touch(100, "social", 1.0)], as_of=AS_OF, params=params)
    cold = engagement_score([_touch(100, "social", -1.0)], as_of=AS_OF, params=params)
    assert warm.value == cold.value == 0.5


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ScoringInputError, match="half_life_days"):
        EngagementParameters(half_life_days=0)
    with pytest.raises(ScoringInputError, match="sentiment_sensitivity"):
        EngagementParameters(sentiment_sensitivity=2)
    with pytest.raises(ScoringInputError, match="email"):
        EngagementParameters(channel_weights={"email": -1})


_touches = st.lists(
    st.builds(
        Interaction,
        occurred_at=st.integers(min_value=0, max_value=200).map(lambda d: day(d)),
        channel=st.sampled_from(["email", "social", "web"]),
        sentiment=st.none() | st.floats(min_value=-1, max_value=1),
    ),
    max_size=20,
)


@given(_touches, st.integers(min_value=1, max_value=100))
def test_never_negative_and_only_decays_while_nothing_happens(
    touches: list[Interaction], wait: int
) -> None:
    now = day(200)
    score = engagement_score(touches, as_of=now)
    later = engagement_score(touches, as_of=now + timedelta(days=wait))
    assert 0.0 <= later.value <= score.value + 1e-12


def _event(payload: object) -> Envelope:
    return Envelope.new(payload, customer=CustomerRef(customer_id="c1"), occurred_at=AS_OF)  # type: ignore[arg-type]


def test_events_the_customer_took_part_in_become_interactions() -> None:
    comment = _event(SocialCommented(platform="facebook", text="love it", sentiment=0.8))
    interaction = interaction_from_event(comment)
    assert interaction == Interaction(AS_OF, "social", 0.8, comment.event_id)
    opened = interaction_from_event(_event(EmailOpened(message_id="m1")))
    assert opened is not None and opened.sentiment is None


@pytest.mark.parametrize(
    "payload",
    [
        EmailSent(message_id="m1"),
        CallCenterCall(
            direction=CallDirection.OUTBOUND,
            duration_seconds=0,
            agent="Linh",
            outcome=CallOutcome.NO_ANSWER,
            topic="renewal",
        ),
    ],
)
def test_what_the_firm_did_alone_is_not_an_interaction(payload: object) -> None:
    assert interaction_from_event(_event(payload)) is None
