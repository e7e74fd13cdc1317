"""Share of wallet: the firm's spend over the customer's stated spend in a category."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import Literal
from uuid import UUID

from projections.errors import MixedCurrencies
from projections.lineage import frozen_inputs, happened_by, require_aware, source_event_ids
from projections.value.common import DAYS_PER_YEAR, ZERO, single_currency
from projections.value.inputs import Purchase, StatedCategorySpend


@dataclass(frozen=True)
class CategoryShare:
    """Share of wallet in one category, from the customer's latest statement about it."""

    category: str
    share: float | None
    size_of_wallet: Decimal
    with_us: Decimal
    with_us_from: Literal["survey", "purchases"]
    headroom: Decimal
    currency: str
    period_days: int
    stated_at: datetime
    event_ids: tuple[UUID, ...]


@dataclass(frozen=True)
class ShareOfWallet:
    """Per-category shares, and over all categories (spend scaled to a year first, since
    statements may cover different periods)."""

    categories: Mapping[str, CategoryShare]
    overall_share: float | None
    annual_headroom: float
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]


def share_of_wallet(
    stated: Iterable[StatedCategorySpend],
    purchases: Iterable[Purchase],
    *,
    as_of: datetime,
) -> ShareOfWallet:
    """SW_j = S_j / sum_k S_k per category: S_j is the spend with us, the sum is the size
    of wallet the customer stated (DOMAIN.md: it is known only when the customer tells).

    Per category the latest statement up to as_of counts (ties on time: the larger
    event id). "With us" is the stated amount when the survey asked; otherwise our
    purchases in that category (Purchase.category_amounts) in the stated period ending
    when the customer answered, (stated_at - period_days, stated_at]. The size of wallet is
    max(stated total, with us): what they buy from us is part of their wallet even when
    they underestimated it, so a share never exceeds 1. A wallet of 0 has no share (None).
    Headroom = size of wallet - with us. Purchases must be in the statement's currency.

    Overall: sum of with-us / sum of sizes and the sum of headrooms, each amount scaled to
    a year (x 365.25 / period_days); None / 0.0 when no category was stated.
    """
    require_aware("as_of", as_of)
    latest: dict[str, StatedCategorySpend] = {}
    for statement in stated:
        if statement.stated_at > as_of:
            continue
        held = latest.get(statement.category)
        if held is None or _statement_order(statement) > _statement_order(held):
            latest[statement.category] = statement
    observed, _ = happened_by(purchases, as_of)
    categories: dict[str, CategoryShare] = {}
    for category, statement in sorted(latest.items()):
        categories[category] = _category_share(statement, observed)
    currency = single_currency("stated category spend", categories.values())
    yearly_with_us = sum(per_year(c.with_us, c.period_days) for c in categories.values())
    yearly_size = sum(per_year(c.size_of_wallet, c.period_days) for c in categories.values())
    yearly_headroom = sum(per_year(c.headroom, c.period_days) for c in categories.values())
    return ShareOfWallet(
        categories=MappingProxyType(categories),
        overall_share=yearly_with_us / yearly_size if yearly_size > 0 else None,
        annual_headroom=yearly_headroom,
        inputs=frozen_inputs(
            as_of=as_of,
            currency=currency,
            annual_with_us=yearly_with_us,
            annual_size_of_wallet=yearly_size,
            categories=len(categories),
        ),
        event_ids=tuple(sorted({i for c in categories.values() for i in c.event_ids})),
    )


def _category_share(statement: StatedCategorySpend, purchases: list[Purchase]) -> CategoryShare:
    used: list[Purchase] = []
    if statement.with_us is not None:
        with_us = statement.with_us
        source: Literal["survey", "purchases"] = "survey"
    else:
        since = statement.stated_at - timedelta(days=statement.period_days)
        used = [
            p
            for p in purchases
            if since < p.occurred_at <= statement.stated_at
            and statement.category in p.category_amounts
        ]
        others = {p.currency for p in used} - {statement.currency}
        if others:
            raise MixedCurrencies(
                f"survey spend on {statement.category!r} and purchases in it",
                others | {statement.currency},
            )
        with_us = sum((p.category_amounts[statement.category] for p in used), ZERO)
        source = "purchases"
    size = max(statement.total, with_us)
    return CategoryShare(
        category=statement.category,
        share=float(with_us / size) if size > 0 else None,
        size_of_wallet=size,
        with_us=with_us,
        with_us_from=source,
        headroom=size - with_us,
        currency=statement.currency,
        period_days=statement.period_days,
        stated_at=statement.stated_at,
        event_ids=source_event_ids([statement], used),
    )


def _statement_order(statement: StatedCategorySpend) -> tuple[datetime, str]:
    return statement.stated_at, str(statement.event_id or "")


def per_year(amount: Decimal, period_days: int) -> float:
    return float(amount) * DAYS_PER_YEAR / period_days
