"""The BTYD purchase summary (frequency, recency, T, monetary value), as lifetimes computes it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from uuid import UUID

from projections.errors import ScoringInputError
from projections.lineage import frozen_inputs, happened_by, require_aware, source_event_ids
from projections.value.common import DAYS_PER_YEAR, ZERO, single_currency
from projections.value.inputs import Purchase


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


def summary_figures(
    spend_by_period: Mapping[int, Decimal], as_of_period: int
) -> tuple[int, int, int, float]:
    """(frequency, recency, age, monetary value) from the spend of each period with a
    purchase (not empty) and the period holding as_of: `PurchaseSummary`'s closed form."""
    first, last = min(spend_by_period), max(spend_by_period)
    repeat_spend = [spend for index, spend in spend_by_period.items() if index != first]
    monetary = float(sum(repeat_spend, ZERO) / len(repeat_spend)) if repeat_spend else 0.0
    return len(repeat_spend), last - first, as_of_period - first, monetary


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
    currency = single_currency("purchases", observed)
    spend_by_period: dict[int, Decimal] = {}
    for purchase in observed:
        index = period.index(purchase.occurred_at)
        spend_by_period[index] = spend_by_period.get(index, ZERO) + purchase.amount
    frequency, recency, age, monetary = summary_figures(spend_by_period, period.index(as_of))
    return PurchaseSummary(
        frequency=frequency,
        recency=recency,
        age=age,
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
