"""Builders and hypothesis strategies for the value-score tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import strategies as st

from projections.value import Purchase

EPOCH = datetime(2024, 1, 1, tzinfo=UTC)


def day(n: float) -> datetime:
    """`n` days after 2024-01-01 00:00 UTC."""
    return EPOCH + timedelta(days=n)


def purchase(
    on: float,
    amount: str | int = "10",
    *,
    margin: str | None = None,
    currency: str = "USD",
    order_id: str | None = None,
    categories: dict[str, str] | None = None,
) -> Purchase:
    return Purchase(
        occurred_at=day(on),
        amount=Decimal(amount),
        currency=currency,
        margin=None if margin is None else Decimal(margin),
        category_amounts={k: Decimal(v) for k, v in (categories or {}).items()},
        order_id=order_id,
        event_id=uuid.uuid4(),
    )


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2023, 12, 31, 23, 59, 59)
).map(lambda naive: naive.replace(tzinfo=UTC))
amounts = st.decimals(min_value=0, max_value=10_000, places=2)
purchases = st.builds(
    Purchase,
    occurred_at=instants,
    amount=amounts,
    currency=st.just("USD"),
    margin=st.none() | st.decimals(min_value=-100, max_value=0, places=2),
    event_id=st.uuids(),
)
purchase_lists = st.lists(purchases, min_size=1, max_size=25)
