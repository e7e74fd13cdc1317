"""Purchases and refunds: the transactions the value measures are computed from."""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from schemas.envelope import Channel, Frozen, Payload
from schemas.money import Amount, Currency, SignedAmount
from schemas.payloads.common import Name


class LineItem(Frozen):
    sku: Name
    name: Name | None = None
    category: Name | None = None
    quantity: int = Field(ge=1, le=1_000_000)
    unit_price: Amount


class Purchased(Payload):
    """An order was paid. `margin` is the contribution margin, when the shop knows it."""

    event_type = "commerce.purchased"
    channel = Channel.COMMERCE

    order_id: Name
    amount: Amount
    currency: Currency
    margin: SignedAmount | None = None
    items: list[LineItem] = Field(default_factory=list, max_length=1000)
    category: Name | None = None

    @model_validator(mode="after")
    def _margin_within_amount(self) -> Self:
        if self.margin is not None and self.margin > self.amount:
            raise ValueError(f"margin {self.margin} exceeds the amount {self.amount}")
        return self

    def summary(self) -> str:
        count = sum(item.quantity for item in self.items)
        things = f" ({count} items)" if count else ""
        return f"purchase {self.order_id}: {self.amount} {self.currency}{things}"


class Refunded(Payload):
    event_type = "commerce.refunded"
    channel = Channel.COMMERCE

    order_id: Name
    amount: Amount
    currency: Currency
    reason: Name | None = None

    def summary(self) -> str:
        return f"refund on {self.order_id}: {self.amount} {self.currency}"
