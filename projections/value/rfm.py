"""RFM: recency, frequency and monetary value scored in quintiles across the customer base."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from types import MappingProxyType
from typing import TypeVar
from uuid import UUID

from projections.errors import MixedCurrencies
from projections.lineage import frozen_inputs, happened_by, require_aware, source_event_ids
from projections.value.common import ZERO, require_one_base, single_currency
from projections.value.inputs import Purchase


@dataclass(frozen=True)
class RfmInput:
    """One customer's raw recency, frequency and monetary value at `as_of` (`rfm_input`)."""

    customer_id: str
    as_of: datetime
    days_since_last_purchase: float
    purchase_count: int
    total_spend: Decimal
    currency: str
    event_ids: tuple[UUID, ...] = ()


def rfm_input(
    customer_id: str, purchases: Iterable[Purchase], *, as_of: datetime
) -> RfmInput | None:
    """Recency = days from the last purchase to as_of, frequency = number of purchases,
    monetary = total amount spent, all up to as_of; None when nothing was bought by then
    (such a customer has no recency and is left out of the ranking)."""
    require_aware("as_of", as_of)
    observed, _ = happened_by(purchases, as_of)
    if not observed:
        return None
    single_currency("purchases", observed)
    last = max(purchase.occurred_at for purchase in observed)
    return RfmInput(
        customer_id=customer_id,
        as_of=as_of,
        days_since_last_purchase=(as_of - last) / timedelta(days=1),
        purchase_count=len(observed),
        total_spend=sum((purchase.amount for purchase in observed), ZERO),
        currency=observed[0].currency,
        event_ids=source_event_ids(observed),
    )


@dataclass(frozen=True)
class RfmWeights:
    recency: float = 1.0
    frequency: float = 1.0
    monetary: float = 1.0


EQUAL_RFM_WEIGHTS = RfmWeights()


@dataclass(frozen=True)
class RfmScore:
    customer_id: str
    recency_score: int
    frequency_score: int
    monetary_score: int
    value: float
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]


def score_rfm(
    customers: Iterable[RfmInput], *, weights: RfmWeights = EQUAL_RFM_WEIGHTS
) -> dict[str, RfmScore]:
    """Quintile scores 1..5 for recency, frequency and monetary value across the customer
    base, and their weighted sum `value = w_r*R + w_f*F + w_m*M` (higher = better).

    Better is: fewer days since the last purchase, more purchases, more spend. Each
    customer's score on a measure is 1 + floor(5 * p), p = (customers strictly worse +
    half of the customers equal to it, itself included) / N, its mid-rank percentile.
    Ties: equal values always get the same score, whatever the input order or customer
    ids; a base where everyone is equal scores 3 throughout. Every customer must be
    measured at the same as_of and in one currency.
    """
    base = list(customers)
    if not base:
        return {}
    require_one_base("RFM", [(c.customer_id, c.as_of) for c in base])
    currencies = {customer.currency for customer in base}
    if len(currencies) > 1:
        raise MixedCurrencies("RFM inputs", currencies)
    # Negated recency so that "higher is better" holds for all three measures.
    recency = _quintiles([-customer.days_since_last_purchase for customer in base])
    frequency = _quintiles([customer.purchase_count for customer in base])
    monetary = _quintiles([customer.total_spend for customer in base])
    # One record for the whole base, shared by every customer's inputs (lineage).
    quintiles = MappingProxyType(
        {
            "recency_days": quintile_ranges(
                [customer.days_since_last_purchase for customer in base], recency
            ),
            "frequency": quintile_ranges([customer.purchase_count for customer in base], frequency),
            "monetary": quintile_ranges([customer.total_spend for customer in base], monetary),
        }
    )
    scores: dict[str, RfmScore] = {}
    for customer, r, f, m in zip(base, recency, frequency, monetary, strict=True):
        scores[customer.customer_id] = RfmScore(
            customer_id=customer.customer_id,
            recency_score=r,
            frequency_score=f,
            monetary_score=m,
            value=weights.recency * r + weights.frequency * f + weights.monetary * m,
            inputs=frozen_inputs(
                as_of=customer.as_of,
                days_since_last_purchase=customer.days_since_last_purchase,
                purchase_count=customer.purchase_count,
                total_spend=customer.total_spend,
                currency=customer.currency,
                base_size=len(base),
                weights=(weights.recency, weights.frequency, weights.monetary),
                quintiles=quintiles,
            ),
            event_ids=customer.event_ids,
        )
    return scores


_Ranked = TypeVar("_Ranked", int, float, Decimal)


def quintile_ranges(
    values: Sequence[_Ranked], scores: Sequence[int]
) -> list[tuple[int, _Ranked, _Ranked]]:
    """(score, lowest value, highest value) of every score some customer got: the
    boundaries a base's quintiles fell on, best score first."""
    ranges: dict[int, tuple[_Ranked, _Ranked]] = {}
    for value, score in zip(values, scores, strict=True):
        low, high = ranges.get(score, (value, value))
        ranges[score] = (min(low, value), max(high, value))
    return [(q, ranges[q][0], ranges[q][1]) for q in sorted(ranges, reverse=True)]


def _quintiles(values: Sequence[_Ranked]) -> list[int]:
    """Mid-rank quintile (1..5) of each value among `values`, higher values scoring higher."""
    ordered = sorted(values)
    n = len(ordered)
    scores = []
    for value in values:
        below = bisect_left(ordered, value)
        equal = bisect_right(ordered, value) - below
        # 1 + floor(5 * (below + equal/2) / n), in integers so no boundary rounds wrong.
        scores.append(1 + min(4, 5 * (2 * below + equal) // (2 * n)))
    return scores
