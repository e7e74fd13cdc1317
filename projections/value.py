"""Customer value scores: the pure core of the scores read model. No I/O, no clock.

Every function that depends on "now" takes `as_of` (an aware datetime), ignores whatever
happened after it, and returns a result that carries its lineage: `inputs` (the as-of
time, the parameters and the intermediate values it was computed from) and `event_ids`
(the events that fed it, sorted). The formulas are those of ../shared/DOMAIN.md; each
function's docstring states the exact rule.

Numbers. Money arrives as Decimal, as in the contract, and plain sums of money stay
Decimal: net contribution decides the below-zero tier at exactly 0, where float rounding
could flip it. Estimates are floats: means, rates, probabilities and compounding with
fractional exponents have no exact decimal value anyway, and the BTYD tools these numbers
are compared with and fed to (lifetimes, PyMC-Marketing) compute in floats.

Time. A year is 365.25 days. Purchase periods (the BTYD summary, the CLV purchase rate)
are calendar days, or blocks of `PeriodRule.days` days, in `PeriodRule.timezone`.

Money from different currencies is never added up: functions that would do so raise
MixedCurrencies, so convert upstream.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Literal, Protocol, TypeVar
from uuid import UUID

from projections.errors import MixedCurrencies, ScoringInputError
from projections.lineage import frozen_inputs, happened_by, require_aware, source_event_ids
from schemas import Envelope
from schemas.payloads.commerce import Purchased, Refunded
from schemas.payloads.support import TicketOpened
from schemas.payloads.survey import SurveyResponded

DAYS_PER_YEAR = 365.25
_YEAR = timedelta(days=DAYS_PER_YEAR)
_ZERO = Decimal(0)


# ---------------------------------------------------------------------------- inputs


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
    payload = _payload_of(event, Purchased)
    category_amounts: dict[str, Decimal] = {}
    if not payload.items and payload.category:
        category_amounts[payload.category] = payload.amount
    for item in payload.items:
        category = item.category or payload.category
        if category:
            spent = item.unit_price * item.quantity
            category_amounts[category] = category_amounts.get(category, _ZERO) + spent
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
    payload = _payload_of(event, Refunded)
    return Refund(
        occurred_at=event.occurred_at,
        amount=payload.amount,
        currency=payload.currency,
        order_id=payload.order_id,
        event_id=event.event_id,
    )


def ticket_from_event(event: Envelope) -> ServiceTicket:
    _payload_of(event, TicketOpened)
    return ServiceTicket(occurred_at=event.occurred_at, event_id=event.event_id)


def stated_spend_from_event(event: Envelope) -> list[StatedCategorySpend]:
    payload = _payload_of(event, SurveyResponded)
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


# ------------------------------------------------------------ BTYD purchase summary


@dataclass(frozen=True)
class PeriodRule:
    """How instants fall into purchase periods: lifetimes' `freq`, as a length in days.

    A period is `days` consecutive calendar days in `timezone`, counted from `anchor`.
    days=1 is lifetimes' freq="D"; days=7 with the default anchor (a Monday) is its
    freq="W", whose pandas weeks run Monday to Sunday.
    """

    days: int = 1
    timezone: tzinfo = UTC
    anchor: date = date(1970, 1, 5)

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ScoringInputError(f"PeriodRule.days={self.days}: must be at least 1")

    def index(self, instant: datetime) -> int:
        """The number of the period `instant` falls in."""
        return (instant.astimezone(self.timezone).date() - self.anchor).days // self.days

    def last_instant(self, instant: datetime) -> datetime:
        """The last microsecond of the period `instant` falls in."""
        start = self.anchor + timedelta(days=self.index(instant) * self.days)
        following = datetime.combine(start + timedelta(days=self.days), time(), self.timezone)
        return following - timedelta(microseconds=1)

    @property
    def per_year(self) -> float:
        return DAYS_PER_YEAR / self.days


DAILY = PeriodRule()


@dataclass(frozen=True)
class PurchaseSummary:
    """A purchase history in the form of lifetimes' `summary_data_from_transaction_data`.

    frequency:      repeat purchase periods: periods with a purchase, minus the first.
    recency:        periods from the first purchase period to the last one.
    age:            periods from the first purchase period to the one holding `as_of`
                    (lifetimes' T).
    monetary_value: mean spend of the repeat periods, a period's purchases summed; 0.0
                    when frequency is 0.
    """

    frequency: int
    recency: int
    age: int
    monetary_value: float
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]

    def as_lifetimes_row(self) -> dict[str, float]:
        """The row lifetimes would produce, under its column names."""
        return {
            "frequency": float(self.frequency),
            "recency": float(self.recency),
            "T": float(self.age),
            "monetary_value": self.monetary_value,
        }


def summarize_purchases(
    purchases: Iterable[Purchase], *, as_of: datetime, period: PeriodRule = DAILY
) -> PurchaseSummary | None:
    """The customer's BTYD summary at `as_of`; None when they bought nothing by then
    (lifetimes has no row for such a customer). Spend is the purchase amount.

    Observation end: purchases after the instant `as_of` are ignored (an as-of score
    never sees the future), and age counts to the period holding `as_of`. lifetimes
    compares whole periods instead, so it also keeps purchases made later in the period
    of its observation_period_end; to reproduce it for an end E, pass
    as_of = period.last_instant(E). With daily periods and date-only timestamps
    (midnight), as_of = E 00:00 gives the same result.
    """
    require_aware("as_of", as_of)
    observed, ignored = happened_by(purchases, as_of)
    if not observed:
        return None
    currency = _single_currency("purchases", observed)
    spend_by_period: dict[int, Decimal] = {}
    for purchase in observed:
        index = period.index(purchase.occurred_at)
        spend_by_period[index] = spend_by_period.get(index, _ZERO) + purchase.amount
    first, last = min(spend_by_period), max(spend_by_period)
    repeat_spend = [spend for index, spend in spend_by_period.items() if index != first]
    monetary = float(sum(repeat_spend, _ZERO) / len(repeat_spend)) if repeat_spend else 0.0
    return PurchaseSummary(
        frequency=len(repeat_spend),
        recency=last - first,
        age=period.index(as_of) - first,
        monetary_value=monetary,
        inputs=frozen_inputs(
            as_of=as_of,
            period_days=period.days,
            period_timezone=str(period.timezone),
            period_anchor=period.anchor,
            currency=currency,
            purchases=len(observed),
            purchases_after_as_of=ignored,
            purchase_periods=len(spend_by_period),
        ),
        event_ids=source_event_ids(observed),
    )


# ------------------------------------------------------------------------ P(Active)


@dataclass(frozen=True)
class ActivityProbability:
    value: float
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]


def probability_active(
    purchases: Iterable[Purchase], *, as_of: datetime, acquired_at: datetime | None = None
) -> ActivityProbability | None:
    """P(Active) = T_ratio ** n, the probability a non-contractual customer is still active.

    T_ratio = (last purchase - acquisition) / (as_of - acquisition), on exact instants;
    n = the number of purchases from acquisition to as_of, the first one included and
    each purchase counted (two on one day are two). Acquisition is `acquired_at` when
    known (e.g. sign-up), else the first purchase.

    Edge cases:
    - no purchase by as_of: None, there is nothing to judge activity by;
    - a single purchase that is also the acquisition, as_of later: T_ratio = 0, so 0.0
      (the formula reads one purchase as no evidence of activity since);
    - last purchase at as_of: T_ratio = 1, so 1.0;
    - acquisition at as_of (every purchase at that instant): 0/0, defined as 1.0.
    """
    require_aware("as_of", as_of)
    observed, ignored = happened_by(purchases, as_of)
    if not observed:
        return None
    first = min(purchase.occurred_at for purchase in observed)
    last = max(purchase.occurred_at for purchase in observed)
    if acquired_at is not None:
        require_aware("acquired_at", acquired_at)
        if acquired_at > first:
            raise ScoringInputError(
                f"acquired_at={acquired_at.isoformat()} is after the first purchase "
                f"({first.isoformat()}); acquisition cannot follow it"
            )
    acquisition = acquired_at or first
    window = as_of - acquisition
    ratio = 1.0 if window == timedelta(0) else (last - acquisition) / window
    return ActivityProbability(
        value=ratio ** len(observed),
        inputs=frozen_inputs(
            as_of=as_of,
            acquired_at=acquisition,
            acquisition_from="acquired_at" if acquired_at is not None else "first purchase",
            last_purchase_at=last,
            time_ratio=ratio,
            purchases=len(observed),
            purchases_after_as_of=ignored,
        ),
        event_ids=source_event_ids(observed),
    )


# ------------------------------------------------------------------------------ RFM


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
    _single_currency("purchases", observed)
    last = max(purchase.occurred_at for purchase in observed)
    return RfmInput(
        customer_id=customer_id,
        as_of=as_of,
        days_since_last_purchase=(as_of - last) / timedelta(days=1),
        purchase_count=len(observed),
        total_spend=sum((purchase.amount for purchase in observed), _ZERO),
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
    _require_one_base("RFM", [(c.customer_id, c.as_of) for c in base])
    currencies = {customer.currency for customer in base}
    if len(currencies) > 1:
        raise MixedCurrencies("RFM inputs", currencies)
    # Negated recency so that "higher is better" holds for all three measures.
    recency = _quintiles([-customer.days_since_last_purchase for customer in base])
    frequency = _quintiles([customer.purchase_count for customer in base])
    monetary = _quintiles([customer.total_spend for customer in base])
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
            ),
            event_ids=customer.event_ids,
        )
    return scores


_Ranked = TypeVar("_Ranked", int, float, Decimal)


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


# ------------------------------------------------------------- contribution, PCV, CLV


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
    _single_currency("purchases and refunds", [*observed, *observed_refunds])
    orders = _orders(observed)
    growth = 1.0 + params.annual_rate
    gross = _ZERO
    value = 0.0
    for purchase in observed:
        contribution = params.margin.contribution(purchase)
        gross += contribution
        value += float(contribution) * growth ** ((as_of - purchase.occurred_at) / _YEAR)
    refunded = _ZERO
    for refund in observed_refunds:
        taken_back = params.margin.refunded_contribution(refund, orders)
        refunded += taken_back
        value -= float(taken_back) * growth ** ((as_of - refund.occurred_at) / _YEAR)
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
    total_contribution = sum((params.margin.contribution(p) for p in observed), _ZERO)
    purchase_periods = summary.frequency + 1
    per_period = float(total_contribution) / purchase_periods
    periods_per_year = (
        summary.frequency / summary.age * params.period.per_year if summary.age else 0.0
    )
    retention = 1.0
    if params.weight_by_p_active:
        activity = probability_active(observed, as_of=as_of, acquired_at=acquired_at)
        retention = activity.value if activity is not None else 0.0
    yearly_margin = per_period * periods_per_year * retention
    discount = 1.0 + params.annual_discount_rate
    value = sum(yearly_margin / discount**year for year in range(1, params.horizon_years + 1))
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


# ----------------------------------------------------------------- net contribution


@dataclass(frozen=True)
class ServiceCostRule:
    margin: MarginRule
    cost_per_ticket: Decimal
    cost_per_refund: Decimal = _ZERO


@dataclass(frozen=True)
class NetContribution:
    value: Decimal
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]


def net_contribution(
    purchases: Iterable[Purchase],
    *,
    as_of: datetime,
    costs: ServiceCostRule,
    refunds: Iterable[Refund] = (),
    tickets: Iterable[ServiceTicket] = (),
) -> NetContribution:
    """What the customer has returned so far, net of what serving them cost, up to as_of:

      sum of contributions - sum of refunded contributions
        - cost_per_refund x refunds - cost_per_ticket x tickets opened

    Plain sums, exact in Decimal, not compounded: only the sign matters (below zero).
    """
    require_aware("as_of", as_of)
    observed, ignored = happened_by(purchases, as_of)
    observed_refunds, ignored_refunds = happened_by(refunds, as_of)
    observed_tickets, ignored_tickets = happened_by(tickets, as_of)
    _single_currency("purchases and refunds", [*observed, *observed_refunds])
    orders = _orders(observed)
    contribution = sum((costs.margin.contribution(p) for p in observed), _ZERO)
    refunded = sum((costs.margin.refunded_contribution(r, orders) for r in observed_refunds), _ZERO)
    refund_handling = costs.cost_per_refund * len(observed_refunds)
    ticket_handling = costs.cost_per_ticket * len(observed_tickets)
    return NetContribution(
        value=contribution - refunded - refund_handling - ticket_handling,
        inputs=frozen_inputs(
            as_of=as_of,
            contribution=contribution,
            refunded_contribution=refunded,
            refund_handling_cost=refund_handling,
            ticket_handling_cost=ticket_handling,
            default_margin_rate=costs.margin.default_rate,
            cost_per_ticket=costs.cost_per_ticket,
            cost_per_refund=costs.cost_per_refund,
            purchases=len(observed),
            refunds=len(observed_refunds),
            tickets=len(observed_tickets),
            events_after_as_of=ignored + ignored_refunds + ignored_tickets,
        ),
        event_ids=source_event_ids(observed, observed_refunds, observed_tickets),
    )


# ------------------------------------------------------------------- share of wallet


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
    currency = _single_currency("stated category spend", categories.values())
    yearly_with_us = sum(_per_year(c.with_us, c.period_days) for c in categories.values())
    yearly_size = sum(_per_year(c.size_of_wallet, c.period_days) for c in categories.values())
    yearly_headroom = sum(_per_year(c.headroom, c.period_days) for c in categories.values())
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
        with_us = sum((p.category_amounts[statement.category] for p in used), _ZERO)
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


def _per_year(amount: Decimal, period_days: int) -> float:
    return float(amount) * DAYS_PER_YEAR / period_days


# ------------------------------------------------------------------------ value tiers


class ValueTier(StrEnum):
    MOST_VALUABLE = "MVC"
    MOST_GROWABLE = "MGC"
    BELOW_ZERO = "BZ"
    OTHER = "other"


@dataclass(frozen=True)
class CustomerValue:
    """What the tiers are decided from, per customer, all measured at `as_of`."""

    customer_id: str
    as_of: datetime
    past_value: float
    lifetime_value: float
    net_contribution: Decimal
    share_of_wallet: float | None = None
    annual_wallet_headroom: float = 0.0


@dataclass(frozen=True)
class TierRule:
    """Parameters of `assign_value_tiers`; fractions are of the whole customer base."""

    most_valuable_fraction: float = 0.2
    growable_fraction: float = 0.2
    growable_share_below: float = 0.5
    growable_min_annual_headroom: float = 0.0

    def __post_init__(self) -> None:
        for name in ("most_valuable_fraction", "growable_fraction", "growable_share_below"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ScoringInputError(f"TierRule.{name}={value}: must be within [0, 1]")


DEFAULT_TIER_RULE = TierRule()


@dataclass(frozen=True)
class TierAssignment:
    customer_id: str
    tier: ValueTier
    reason: str
    inputs: Mapping[str, object]


def assign_value_tiers(
    customers: Iterable[CustomerValue], *, rule: TierRule = DEFAULT_TIER_RULE
) -> dict[str, TierAssignment]:
    """MVC / MGC / BZ / other across a customer base of N, first rule that holds wins:

    1. BZ, below zero: net contribution < 0 (they cost more than they returned).
    2. MVC, most valuable: past value > 0 and at least the k-th highest past value among
       the customers not BZ, k = ceil(most_valuable_fraction x N). Everyone equal to that
       cut-off is in, so ties never depend on order.
    3. MGC, most growable (potential beyond actual value), either
       - lifetime value > 0 and at least the k'-th highest lifetime value among the
         customers neither BZ nor MVC, k' = ceil(growable_fraction x N), ties in; or
       - a stated share of wallet below growable_share_below with annual wallet headroom
         above growable_min_annual_headroom (they buy most of the category elsewhere).
    4. other.
    """
    base = list(customers)
    _require_one_base("tier", [(c.customer_id, c.as_of) for c in base])
    below_zero = {c.customer_id for c in base if c.net_contribution < 0}
    valuable_cutoff = _top_cutoff(
        [c.past_value for c in base if c.customer_id not in below_zero],
        rule.most_valuable_fraction,
        len(base),
    )
    most_valuable = {
        c.customer_id
        for c in base
        if c.customer_id not in below_zero
        and valuable_cutoff is not None
        and c.past_value > 0
        and c.past_value >= valuable_cutoff
    }
    settled = below_zero | most_valuable
    growable_cutoff = _top_cutoff(
        [c.lifetime_value for c in base if c.customer_id not in settled],
        rule.growable_fraction,
        len(base),
    )
    assignments: dict[str, TierAssignment] = {}
    for c in base:
        tier, reason = _tier_of(c, rule, below_zero, most_valuable, growable_cutoff)
        assignments[c.customer_id] = TierAssignment(
            customer_id=c.customer_id,
            tier=tier,
            reason=reason,
            inputs=frozen_inputs(
                as_of=c.as_of,
                past_value=c.past_value,
                lifetime_value=c.lifetime_value,
                net_contribution=c.net_contribution,
                share_of_wallet=c.share_of_wallet,
                annual_wallet_headroom=c.annual_wallet_headroom,
                base_size=len(base),
                most_valuable_cutoff=valuable_cutoff,
                growable_cutoff=growable_cutoff,
                rule=rule,
            ),
        )
    return assignments


def _tier_of(
    c: CustomerValue,
    rule: TierRule,
    below_zero: set[str],
    most_valuable: set[str],
    growable_cutoff: float | None,
) -> tuple[ValueTier, str]:
    if c.customer_id in below_zero:
        return ValueTier.BELOW_ZERO, f"net contribution {c.net_contribution} < 0"
    if c.customer_id in most_valuable:
        return ValueTier.MOST_VALUABLE, f"past value {c.past_value:.2f} in the top"
    if growable_cutoff is not None and c.lifetime_value > 0 and c.lifetime_value >= growable_cutoff:
        return ValueTier.MOST_GROWABLE, f"lifetime value {c.lifetime_value:.2f} in the top"
    if (
        c.share_of_wallet is not None
        and c.share_of_wallet < rule.growable_share_below
        and c.annual_wallet_headroom > rule.growable_min_annual_headroom
    ):
        return (
            ValueTier.MOST_GROWABLE,
            f"share of wallet {c.share_of_wallet:.2f}, headroom "
            f"{c.annual_wallet_headroom:.2f} a year",
        )
    return ValueTier.OTHER, "none of the tier rules holds"


def _top_cutoff(values: list[float], fraction: float, base_size: int) -> float | None:
    """The k-th highest positive value, k = ceil(fraction x base_size); None when k is 0
    or no value is positive. The epsilon keeps 0.7 x 10 from rounding up to 8."""
    k = math.ceil(fraction * base_size - 1e-9)
    positive = sorted((v for v in values if v > 0), reverse=True)
    if k <= 0 or not positive:
        return None
    return positive[min(k, len(positive)) - 1]


# ------------------------------------------------------------------------- plumbing


def _require_one_base(what: str, members: list[tuple[str, datetime]]) -> None:
    """A ranking compares customers: each once, all measured at the same as_of."""
    counts = Counter(customer_id for customer_id, _ in members)
    repeated = sorted(customer_id for customer_id, n in counts.items() if n > 1)
    if repeated:
        raise ScoringInputError(f"customer_id repeated in the {what} base: {repeated[:5]}")
    as_ofs = sorted({as_of for _, as_of in members})
    if len(as_ofs) > 1:
        raise ScoringInputError(
            f"{what} inputs measured at different as_of times: "
            f"{', '.join(t.isoformat() for t in as_ofs[:3])}"
        )


class _Priced(Protocol):
    @property
    def currency(self) -> str: ...


def _single_currency(what: str, items: Iterable[_Priced]) -> str | None:
    currencies = {item.currency for item in items}
    if len(currencies) > 1:
        raise MixedCurrencies(what, currencies)
    return next(iter(currencies), None)


def _orders(purchases: Iterable[Purchase]) -> dict[str, Purchase]:
    return {p.order_id: p for p in purchases if p.order_id is not None}


_P = TypeVar("_P")


def _payload_of(event: Envelope, model: type[_P]) -> _P:
    if not isinstance(event.payload, model):
        raise ScoringInputError(
            f"event {event.event_id} is a {event.type} event, not {model.__name__}"
        )
    return event.payload
