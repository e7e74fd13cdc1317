"""Purchases and refunds: the transactions the value measures are computed from."""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, model_validator

from schemas.envelope import Channel, Frozen, Payload
from schemas.money import Amount, Currency, SignedAmount
from schemas.text import Name


class LineItem(Frozen):
    """One line of an order."""

    sku: Name = Field(description="The shop's stock-keeping unit.")
    name: Name | None = Field(default=None, description="The product name.")
    category: Name | None = Field(default=None, description="The shop's product category.")
    quantity: int = Field(ge=1, le=1_000_000, description="Units bought.")
    unit_price: Amount = Field(description="Price of one unit, in the order's currency.")


class Purchased(Payload):
    """An order was paid. `margin` is the contribution margin, when the shop knows it."""

    event_type = "commerce.purchased"
    channel = Channel.COMMERCE
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_id": "SO-100482",
                    "amount": "149.90",
                    "currency": "EUR",
                    "margin": "41.20",
                    "items": [
                        {
                            "sku": "DRL-18V",
                            "name": "Cordless drill 18V",
                            "category": "tools",
                            "quantity": 1,
                            "unit_price": "129.90",
                        },
                        {"sku": "BIT-SET-10", "quantity": 2, "unit_price": "10.00"},
                    ],
                    "category": "tools",
                }
            ]
        }
    )

    order_id: Name = Field(description="The shop's order id.")
    amount: Amount = Field(description="What the customer paid, taxes included.")
    currency: Currency
    margin: SignedAmount | None = Field(
        default=None, description="Contribution margin of the order; negative for a loss."
    )
    items: tuple[LineItem, ...] = Field(default=(), max_length=1000, description="Order lines.")
    category: Name | None = Field(default=None, description="The order's main category.")

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
    """Money was paid back on an order."""

    event_type = "commerce.refunded"
    channel = Channel.COMMERCE
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "order_id": "SO-100482",
                    "amount": "20.00",
                    "currency": "EUR",
                    "reason": "bit set damaged",
                }
            ]
        }
    )

    order_id: Name = Field(description="The order refunded.")
    amount: Amount = Field(description="The amount paid back.")
    currency: Currency
    reason: Name | None = Field(default=None, description="Why, as the shop recorded it.")

    def summary(self) -> str:
        return f"refund on {self.order_id}: {self.amount} {self.currency}"
