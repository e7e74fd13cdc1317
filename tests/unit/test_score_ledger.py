"""The score ledger gives the scores exactly what the events would, stored as JSON."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producers.simulator import simulate
from projections.engagement import interaction_from_event
from projections.errors import ScoringInputError
from projections.score_ledger import CustomerHistory, ledger_entry
from projections.scores import score_customer
from projections.value import (
    purchase_from_event,
    refund_from_event,
    stated_spend_from_event,
    ticket_from_event,
)
from schemas import CustomerRef, Envelope, Source
from schemas.payloads.commerce import LineItem, Purchased, Refunded
from schemas.payloads.support import TicketOpened
from schemas.payloads.survey import SurveyResponded

EVENTS = list(itertools.islice(simulate(300, seed=5), 6000))


def _taken_directly(events: list[Envelope]) -> CustomerHistory:
    """The reference: each input built straight from its event by the value functions."""
    history = CustomerHistory("c")
    for event in events:
        payload = event.payload
        if isinstance(payload, Purchased):
            history.purchases.append(purchase_from_event(event))
        elif isinstance(payload, Refunded):
            history.refunds.append(refund_from_event(event))
        elif isinstance(payload, TicketOpened):
            history.tickets.append(ticket_from_event(event))
        elif isinstance(payload, SurveyResponded):
            history.statements.extend(stated_spend_from_event(event))
        if (interaction := interaction_from_event(event)) is not None:
            history.interactions.append(interaction)
    return history


def _through_the_ledger(events: list[Envelope]) -> CustomerHistory:
    history = CustomerHistory("c")
    for event in events:
        stored = json.loads(json.dumps(ledger_entry(event)))  # as PostgreSQL hands it back
        history.add_entry(event.event_id, event.occurred_at, stored)
    return history


def test_every_simulated_event_gives_the_scores_what_the_event_itself_does() -> None:
    types = {e.type for e in EVENTS}
    assert {"commerce.purchased", "commerce.refunded", "survey.responded"} <= types
    assert _through_the_ledger(EVENTS) == _taken_directly(EVENTS)
    assert CustomerHistory.from_events("c", EVENTS) == _taken_directly(EVENTS)


@settings(max_examples=100)
@given(
    st.lists(st.sampled_from(EVENTS), max_size=60),
    st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2100, 1, 1)),
)
def test_scores_from_the_ledger_equal_scores_from_the_events(
    events: list[Envelope], as_of: datetime
) -> None:
    when = as_of.replace(tzinfo=UTC)
    ours = score_customer(_through_the_ledger(events), as_of=when)
    theirs = score_customer(_taken_directly(events), as_of=when)
    assert ours == theirs


def test_money_comes_back_exact_with_its_categories() -> None:
    bought = Envelope.new(
        Purchased(
            order_id="o-1",
            amount=Decimal("0.30"),
            currency="EUR",
            margin=Decimal("0.1000"),
            items=[
                LineItem(sku="a", quantity=3, unit_price=Decimal("0.05"), category="tea"),
                LineItem(sku="b", quantity=1, unit_price=Decimal("0.15")),
            ],
            category="misc",
        ),
        customer=CustomerRef(customer_id="c"),
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        source=Source(system="shop", channel=Purchased.channel),
    )
    (purchase,) = _through_the_ledger([bought]).purchases
    assert purchase.amount == Decimal("0.30") and purchase.margin == Decimal("0.1000")
    assert purchase.category_amounts == {"tea": Decimal("0.15"), "misc": Decimal("0.15")}


def test_values_the_scores_refuse_are_refused_when_read_not_when_projected() -> None:
    history = CustomerHistory("c")
    with pytest.raises(ScoringInputError, match="must not be negative"):
        history.add_entry(
            EVENTS[0].event_id,
            EVENTS[0].occurred_at,
            {"e": "amount=-1: must not be negative"},
        )
