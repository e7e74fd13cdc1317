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
from projections.errors import ScoringInputError
from projections.score_ledger import add_entry, ledger_entry
from projections.scores import CustomerHistory, score_customer
from schemas import CustomerRef, Envelope, Source
from schemas.payloads.commerce import LineItem, Purchased

EVENTS = list(itertools.islice(simulate(300, seed=5), 6000))


def _through_the_ledger(events: list[Envelope]) -> CustomerHistory:
    history = CustomerHistory("c")
    for event in events:
        stored = json.loads(json.dumps(ledger_entry(event)))  # as PostgreSQL hands it back
        add_entry(history, event.event_id, event.occurred_at, stored)
    return history


def test_every_simulated_event_gives_the_scores_what_the_event_itself_does() -> None:
    types = {e.type for e in EVENTS}
    assert {"commerce.purchased", "commerce.refunded", "survey.responded"} <= types
    assert _through_the_ledger(EVENTS) == CustomerHistory.from_events("c", EVENTS)


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
    theirs = score_customer(CustomerHistory.from_events("c", events), as_of=when)
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
        add_entry(
            history,
            EVENTS[0].event_id,
            EVENTS[0].occurred_at,
            {"e": "amount=-1: must not be negative"},
        )
