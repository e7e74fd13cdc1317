"""Purchase ledger projector: purchases and refunds as signed money rows. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from schemas import Envelope, Payload
from schemas.payloads.commerce import Purchased, Refunded


@dataclass(frozen=True)
class PurchaseRow:
    event_id: UUID
    customer_id: str
    occurred_at: datetime
    kind: str  # 'purchase' or 'refund'
    order_id: str
    amount: Decimal  # negative for refunds
    margin: Decimal | None
    currency: str
    category: str | None


def purchase_row(event: Envelope) -> PurchaseRow | None:
    """The ledger row of a purchase or refund event; None for any other event."""
    row = _BY_PAYLOAD.get(type(event.payload))
    return row(event) if row else None


def _purchase(event: Envelope) -> PurchaseRow:
    payload = event.payload
    assert isinstance(payload, Purchased)
    categories = {item.category for item in payload.items if item.category}
    category = payload.category or (categories.pop() if len(categories) == 1 else None)
    return PurchaseRow(
        event.event_id,
        event.customer.partition_key,
        event.occurred_at,
        "purchase",
        payload.order_id,
        payload.amount,
        payload.margin,
        payload.currency,
        category,
    )


def _refund(event: Envelope) -> PurchaseRow:
    payload = event.payload
    assert isinstance(payload, Refunded)
    return PurchaseRow(
        event.event_id,
        event.customer.partition_key,
        event.occurred_at,
        "refund",
        payload.order_id,
        -payload.amount,
        None,
        payload.currency,
        None,
    )


_BY_PAYLOAD: dict[type[Payload], Callable[[Envelope], PurchaseRow]] = {
    Purchased: _purchase,
    Refunded: _refund,
}
