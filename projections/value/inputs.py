"""What the scores are computed from: purchases, refunds, tickets and stated spend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from projections.errors import ScoringInputError
from projections.lineage import require_aware
from projections.value.common import ZERO, payload_of
from schemas import Envelope
from schemas.payloads.commerce import Purchased, Refunded
from schemas.payloads.support import TicketOpened
from schemas.payloads.survey import SurveyResponded


@dataclass(frozen=True)
class Purchase:
    """One paid order, as the scores need it (`purchase_from_event` builds it).

    `margin` is the contribution margin when the shop sent one. `category_amounts` is the
    spend per product category, used for share of wallet.
    """

    occurred_at: datetime
    amount: Decimal
    currency: str
    margin: Decimal | None = None
    category_amounts: Mapping[str, Decimal] = field(default_factory=dict)
    order_id: str | None = None
    event_id: UUID | None = None

    def __post_init__(self) -> None:
        require_aware("Purchase.occurred_at", self.occurred_at)
        if self.amount < 0:
            raise ScoringInputError(f"Purchase.amount={self.amount}: must not be negative")


@dataclass(frozen=True)
class Refund:
    """Money given back on an order (`refund_from_event` builds it)."""

    occurred_at: datetime
    amount: Decimal
    currency: str
    order_id: str | None = None
    event_id: UUID | None = None

    def __post_init__(self) -> None:
        require_aware("Refund.occurred_at", self.occurred_at)
        if self.amount < 0:
            raise ScoringInputError(f"Refund.amount={self.amount}: must not be negative")


@dataclass(frozen=True)
class ServiceTicket:
    """A support ticket the customer opened: a cost to serve (`ticket_from_event`)."""

    occurred_at: datetime
    event_id: UUID | None = None

    def __post_init__(self) -> None:
        require_aware("ServiceTicket.occurred_at", self.occurred_at)


@dataclass(frozen=True)
class StatedCategorySpend:
    """What a customer said in a survey they spend in a category over `period_days`:
    `total` with all firms (the size of wallet), `with_us` when the survey asked."""

    category: str
    total: Decimal
    currency: str
    stated_at: datetime
    with_us: Decimal | None = None
    period_days: int = 365
    event_id: UUID | None = None

    def __post_init__(self) -> None:
        require_aware("StatedCategorySpend.stated_at", self.stated_at)
        if self.period_days < 1:
            raise ScoringInputError(
                f"StatedCategorySpend.period_days={self.period_days}: must be at least 1"
            )


def purchase_from_event(event: Envelope) -> Purchase:
    """The Purchase of a commerce.purchased event.

    Category spend: each line item (quantity x unit price) counts under its own category,
    else the order's; an order without items puts its whole amount under the order's
    category. Spend without any category is left out of share of wallet.
    """
    payload = payload_of(event, Purchased)
    category_amounts: dict[str, Decimal] = {}
    if not payload.items and payload.category:
        category_amounts[payload.category] = payload.amount
    for item in payload.items:
        category = item.category or payload.category
        if category:
            spent = item.unit_price * item.quantity
            category_amounts[category] = category_amounts.get(category, ZERO) + spent
    return Purchase(
        occurred_at=event.occurred_at,
        amount=payload.amount,
        currency=payload.currency,
        margin=payload.margin,
        category_amounts=category_amounts,
        order_id=payload.order_id,
        event_id=event.event_id,
    )


def refund_from_event(event: Envelope) -> Refund:
    payload = payload_of(event, Refunded)
    return Refund(
        occurred_at=event.occurred_at,
        amount=payload.amount,
        currency=payload.currency,
        order_id=payload.order_id,
        event_id=event.event_id,
    )


def ticket_from_event(event: Envelope) -> ServiceTicket:
    payload_of(event, TicketOpened)
    return ServiceTicket(occurred_at=event.occurred_at, event_id=event.event_id)


def stated_spend_from_event(event: Envelope) -> list[StatedCategorySpend]:
    payload = payload_of(event, SurveyResponded)
    return [
        StatedCategorySpend(
            category=spend.category,
            total=spend.total,
            currency=spend.currency,
            stated_at=event.occurred_at,
            with_us=spend.with_us,
            period_days=spend.period_days,
            event_id=event.event_id,
        )
        for spend in payload.category_spend
    ]


def orders_by_id(purchases: Iterable[Purchase]) -> dict[str, Purchase]:
    return {p.order_id: p for p in purchases if p.order_id is not None}
