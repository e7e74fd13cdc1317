"""From contract events to score inputs."""

from __future__ import annotations

from decimal import Decimal

import pytest

from projections.errors import ScoringInputError
from projections.value import (
    purchase_from_event,
    refund_from_event,
    stated_spend_from_event,
    ticket_from_event,
)
from schemas import CustomerRef, Envelope
from schemas.payloads.commerce import LineItem, Purchased, Refunded
from schemas.payloads.support import TicketOpened
from schemas.payloads.survey import CategorySpend, SurveyResponded
from tests.unit.value_factories import day

CUSTOMER = CustomerRef(customer_id="c1")


def _event(payload: Purchased | Refunded | TicketOpened | SurveyResponded) -> Envelope:
    return Envelope.new(payload, customer=CUSTOMER, occurred_at=day(3))


def _item(sku: str, price: str, quantity: int, category: str | None) -> LineItem:
    return LineItem(sku=sku, quantity=quantity, unit_price=Decimal(price), category=category)


def test_purchase_spend_per_category_from_items_else_the_order() -> None:
    event = _event(
        Purchased(
            order_id="o1",
            amount=Decimal("70"),
            currency="VND",
            margin=Decimal("12.5"),
            category="books",
            items=[
                _item("b1", "10", 2, None),  # falls back to the order's category
                _item("m1", "25", 2, "music"),
            ],
        )
    )
    bought = purchase_from_event(event)
    assert bought.category_amounts == {"books": Decimal("20"), "music": Decimal("50")}
    assert (bought.amount, bought.margin, bought.currency) == (Decimal(70), Decimal("12.5"), "VND")
    assert (bought.order_id, bought.event_id, bought.occurred_at) == ("o1", event.event_id, day(3))


def test_an_order_without_items_counts_whole_under_its_category() -> None:
    order = Purchased(order_id="o2", amount=Decimal("9"), currency="USD", category="tea")
    assert purchase_from_event(_event(order)).category_amounts == {"tea": Decimal("9")}
    bare = Purchased(order_id="o3", amount=Decimal("9"), currency="USD")
    assert purchase_from_event(_event(bare)).category_amounts == {}


def test_refund_ticket_and_survey() -> None:
    refund = refund_from_event(_event(Refunded(order_id="o1", amount=Decimal("5"), currency="USD")))
    assert (refund.order_id, refund.amount) == ("o1", Decimal(5))
    ticket = _event(TicketOpened(ticket_id="t1", subject="late parcel"))
    assert ticket_from_event(ticket).event_id == ticket.event_id
    survey = _event(
        SurveyResponded(
            survey_id="s1",
            category_spend=[CategorySpend(category="tea", total=Decimal("100"), currency="USD")],
        )
    )
    [stated] = stated_spend_from_event(survey)
    assert (stated.category, stated.with_us, stated.period_days) == ("tea", None, 365)
    assert stated.stated_at == day(3)


def test_the_wrong_event_type_is_refused_by_name() -> None:
    ticket = _event(TicketOpened(ticket_id="t1", subject="late parcel"))
    with pytest.raises(ScoringInputError, match=r"support\.ticket_opened event, not Purchased"):
        purchase_from_event(ticket)
