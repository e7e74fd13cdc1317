"""Contribution margins, past customer value (PCV) and customer lifetime value (CLV)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from projections.errors import AsOfOutOfRange, ScoringInputError
from projections.lineage import frozen_inputs, happened_by, require_aware, source_event_ids
from projections.value.activity import probability_active
from projections.value.common import YEAR, ZERO, single_currency
from projections.value.inputs import Purchase, Refund, orders_by_id
from projections.value.summary import DAILY, PeriodRule, summarize_purchases


@dataclass(frozen=True)
class MarginRule:
    """A purchase's contribution: its margin when the shop sent one, else amount x
    `default_rate` (a fraction, e.g. Decimal("0.3"))."""

    default_rate: Decimal

    def __post_init__(self) -> None:
        if not 0 <= self.default_rate <= 1:
            raise ScoringInputError(
                f"MarginRule.default_rate={self.default_rate}: must be a fraction in [0, 1]"
            )

    def contribution(self, purchase: Purchase) -> Decimal:
        if purchase.margin is not None:
            return purchase.margin
        return purchase.amount * self.default_rate

    def refunded_contribution(self, refund: Refund, orders: Mapping[str, Purchase]) -> Decimal:
        """The contribution a refund takes back: the refunded share of its order's
        contribution (refund amount x order contribution / order amount), at the default
        rate when the order is unknown or was free."""
        order = orders.get(refund.order_id) if refund.order_id is not None else None
        if order is None or order.amount == 0:
            return refund.amount * self.default_rate
        return refund.amount * self.contribution(order) / order.amount


@dataclass(frozen=True)
class PastValueParameters:
    annual_rate: float
    margin: MarginRule

    def __post_init__(self) -> None:
        if not self.annual_rate > -1:
            raise ScoringInputError(
                f"PastValueParameters.annual_rate={self.annual_rate}: must be above -1"
            )


@dataclass(frozen=True)
class PastValue:
    value: float
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]


def past_customer_value(
    purchases: Iterable[Purchase],
    *,
    as_of: datetime,
    params: PastValueParameters,
    refunds: Iterable[Refund] = (),
) -> PastValue:
    """PCV = sum_i GC_i * (1 + r) ** ((as_of - t_i) / 1 year), r = params.annual_rate.

    GC_i is a purchase's contribution (MarginRule); a refund counts as a negative
    contribution (its refunded contribution) compounded from the refund's time. Only
    events up to as_of count; with none, PCV is 0.0. Service costs are not in PCV (it is
    a gross value); they are in `net_contribution`.
    """
    require_aware("as_of", as_of)
    observed, ignored = happened_by(purchases, as_of)
    observed_refunds, ignored_refunds = happened_by(refunds, as_of)
    single_currency("purchases and refunds", [*observed, *observed_refunds])
    orders = orders_by_id(observed)
    growth = 1.0 + params.annual_rate
    gross = ZERO
    value = 0.0
    for purchase in observed:
        contribution = params.margin.contribution(purchase)
        gross += contribution
        value += float(contribution) * compounded(growth, as_of, purchase.occurred_at)
    refunded = ZERO
    for refund in observed_refunds:
        taken_back = params.margin.refunded_contribution(refund, orders)
        refunded += taken_back
        value -= float(taken_back) * compounded(growth, as_of, refund.occurred_at)
    return PastValue(
        value=value,
        inputs=frozen_inputs(
            as_of=as_of,
            annual_rate=params.annual_rate,
            default_margin_rate=params.margin.default_rate,
            gross_contribution=gross,
            refunded_contribution=refunded,
            purchases=len(observed),
            refunds=len(observed_refunds),
            events_after_as_of=ignored + ignored_refunds,
        ),
        event_ids=source_event_ids(observed, observed_refunds),
    )


def compounded(growth: float, as_of: datetime, at: datetime) -> float:
    """growth ** (years from `at` to `as_of`); AsOfOutOfRange beyond a float's range."""
    years = (as_of - at) / YEAR
    try:
        return math.pow(growth, years)
    except OverflowError:
        raise AsOfOutOfRange(
            f"as_of={as_of.isoformat()}: {years:,.0f} years of compounding at "
            f"{growth - 1:.0%} a year from {at.date().isoformat()} is beyond any number"
        ) from None


@dataclass(frozen=True)
class LifetimeValueParameters:
    annual_discount_rate: float
    horizon_years: int
    margin: MarginRule
    period: PeriodRule = DAILY
    weight_by_p_active: bool = True

    def __post_init__(self) -> None:
        if self.horizon_years < 0:
            raise ScoringInputError(
                f"LifetimeValueParameters.horizon_years={self.horizon_years}: must be >= 0"
            )
        if not self.annual_discount_rate > -1:
            raise ScoringInputError(
                "LifetimeValueParameters.annual_discount_rate="
                f"{self.annual_discount_rate}: must be above -1"
            )


@dataclass(frozen=True)
class LifetimeValue:
    value: float
    yearly_margin: float
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]


def purchase_periods_per_year(frequency: int, age: int, period: PeriodRule) -> float:
    """Repeat purchase periods per period of observed life, scaled to a year (0 at age 0)."""
    return frequency / age * period.per_year if age else 0.0


def discounted(yearly: float, annual_rate: float, horizon_years: int) -> float:
    """sum_{t=1..H} yearly / (1 + r) ** t."""
    discount = 1.0 + annual_rate
    return sum(yearly / discount**year for year in range(1, horizon_years + 1))


def customer_lifetime_value(
    purchases: Iterable[Purchase],
    *,
    as_of: datetime,
    params: LifetimeValueParameters,
    acquired_at: datetime | None = None,
) -> LifetimeValue:
    """CLV = sum_{t=1..H} CM_t / (1 + r) ** t, t in years, H = params.horizon_years.

    CM_t is the same every year, projected from the purchases up to as_of:
      CM = (contribution per purchase period) x (purchase periods per year) x retention
    - contribution per purchase period: total contribution (MarginRule) / number of
      periods with a purchase (params.period; all of them, the first included);
    - purchase periods per year: frequency / age of the BTYD summary (repeat periods per
      period of observed life; 0 when age is 0) x periods per year. A customer who
      bought once has shown no repeat rate yet, so their CLV is 0;
    - retention: P(Active) (with `acquired_at`) when params.weight_by_p_active, else 1;
      it is the chance the customer is still active now, applied to every future year
      (an active customer is assumed to stay for the horizon).
    Refunds and service costs are not projected; they count in `net_contribution`.
    No purchase by as_of: CLV 0.0.
    """
    require_aware("as_of", as_of)
    observed, ignored = happened_by(purchases, as_of)
    summary = summarize_purchases(observed, as_of=as_of, period=params.period)
    if summary is None:
        return LifetimeValue(
            0.0, 0.0, frozen_inputs(as_of=as_of, purchases=0, purchases_after_as_of=ignored), ()
        )
    total_contribution = sum((params.margin.contribution(p) for p in observed), ZERO)
    purchase_periods = summary.frequency + 1
    per_period = float(total_contribution) / purchase_periods
    periods_per_year = purchase_periods_per_year(summary.frequency, summary.age, params.period)
    retention = 1.0
    if params.weight_by_p_active:
        activity = probability_active(observed, as_of=as_of, acquired_at=acquired_at)
        retention = activity.value if activity is not None else 0.0
    yearly_margin = per_period * periods_per_year * retention
    value = discounted(yearly_margin, params.annual_discount_rate, params.horizon_years)
    return LifetimeValue(
        value=value,
        yearly_margin=yearly_margin,
        inputs=frozen_inputs(
            as_of=as_of,
            annual_discount_rate=params.annual_discount_rate,
            horizon_years=params.horizon_years,
            default_margin_rate=params.margin.default_rate,
            period_days=params.period.days,
            total_contribution=total_contribution,
            purchase_periods=purchase_periods,
            contribution_per_period=per_period,
            frequency=summary.frequency,
            age=summary.age,
            purchase_periods_per_year=periods_per_year,
            retention=retention,
            purchases=len(observed),
            purchases_after_as_of=ignored,
        ),
        event_ids=summary.event_ids,
    )
