"""The BTYD purchase summary: lifetimes' conventions, by hand and as properties."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.errors import MixedCurrencies
from projections.value import DAILY, PeriodRule, Purchase, summarize_purchases
from tests.unit.value_factories import day, purchase, purchase_lists, purchases


def test_repeat_periods_recency_age_and_mean_of_repeat_periods() -> None:
    history = [
        purchase(0, "10"),
        purchase(0.5, "5"),  # same day as the first: the first period is 15, not a repeat
        purchase(3, "20"),
        purchase(3.25, "4"),  # same day: one repeat period worth 24
        purchase(7, "30"),
    ]
    summary = summarize_purchases(history, as_of=day(10))
    assert summary is not None
    assert (summary.frequency, summary.recency, summary.age) == (2, 7, 10)
    assert summary.monetary_value == pytest.approx((24 + 30) / 2)
    assert summary.as_lifetimes_row() == {
        "frequency": 2.0,
        "recency": 7.0,
        "T": 10.0,
        "monetary_value": pytest.approx(27.0),
    }
    assert set(summary.event_ids) == {p.event_id for p in history}


def test_one_purchase_period_has_no_repeat_value() -> None:
    summary = summarize_purchases([purchase(2, "10"), purchase(2.1, "7")], as_of=day(5))
    assert summary is not None
    assert (summary.frequency, summary.recency, summary.age, summary.monetary_value) == (
        0,
        0,
        3,
        0.0,
    )


def test_purchases_after_as_of_are_ignored_and_counted_in_the_inputs() -> None:
    summary = summarize_purchases([purchase(0), purchase(4), purchase(9)], as_of=day(5))
    assert summary is not None
    assert (summary.frequency, summary.recency, summary.age) == (1, 4, 5)
    assert summary.inputs["purchases_after_as_of"] == 1


def test_nothing_bought_by_as_of_has_no_summary() -> None:
    assert summarize_purchases([purchase(9)], as_of=day(5)) is None
    assert summarize_purchases([], as_of=day(5)) is None


def test_weekly_periods_start_on_monday() -> None:
    # 2024-01-01 is a Monday: days 0..6 are one week, day 7 the next.
    weekly = PeriodRule(days=7)
    summary = summarize_purchases(
        [purchase(0), purchase(6.9), purchase(7), purchase(20)], as_of=day(30), period=weekly
    )
    assert summary is not None
    assert (summary.frequency, summary.recency, summary.age) == (2, 2, 4)


def test_days_are_calendar_days_in_the_period_timezone() -> None:
    # 23:30 UTC on day 0 is already day 1 in Ho Chi Minh City (UTC+7).
    history = [purchase(0), purchase(23.5 / 24)]
    utc = summarize_purchases(history, as_of=day(3))
    saigon = summarize_purchases(
        history, as_of=day(3), period=PeriodRule(timezone=ZoneInfo("Asia/Ho_Chi_Minh"))
    )
    assert utc is not None and saigon is not None
    assert (utc.frequency, saigon.frequency) == (0, 1)


def test_money_in_two_currencies_is_refused() -> None:
    with pytest.raises(MixedCurrencies, match="EUR, USD"):
        summarize_purchases([purchase(0), purchase(1, currency="EUR")], as_of=day(2))


@given(purchase_lists, st.randoms(use_true_random=False))
def test_order_of_transactions_does_not_matter(history: list[Purchase], rng: random.Random) -> None:
    as_of = max(p.occurred_at for p in history)
    shuffled = list(history)
    rng.shuffle(shuffled)
    assert summarize_purchases(history, as_of=as_of) == summarize_purchases(shuffled, as_of=as_of)


@given(purchase_lists, purchases, st.integers(min_value=0, max_value=400))
def test_a_later_purchase_never_lowers_recency(
    history: list[Purchase], extra: Purchase, days: int
) -> None:
    latest = max(p.occurred_at for p in history)
    later = replace(extra, occurred_at=latest + timedelta(days=days))
    as_of = later.occurred_at
    before = summarize_purchases(history, as_of=as_of)
    after = summarize_purchases([*history, later], as_of=as_of)
    assert before is not None and after is not None
    assert after.recency >= before.recency
    assert after.frequency >= before.frequency
    assert after.age == before.age


@given(purchase_lists, st.integers(min_value=-30, max_value=400))
def test_invariants_of_the_summary(history: list[Purchase], offset_days: int) -> None:
    as_of = max(p.occurred_at for p in history) + timedelta(days=offset_days)
    summary = summarize_purchases(history, as_of=as_of)
    if summary is None:
        assert all(p.occurred_at > as_of for p in history)
        return
    assert 0 <= summary.frequency <= summary.recency <= summary.age
    if summary.frequency == 0:
        assert summary.monetary_value == 0.0
    # A repeat period's spend is a sum of purchases, so the mean is bounded by all of them.
    assert 0 <= Decimal(summary.monetary_value) <= sum(p.amount for p in history) + Decimal("1e-6")


def test_last_instant_of_a_period() -> None:
    weekly = PeriodRule(days=7)
    assert weekly.last_instant(day(2.5)) == day(7) - timedelta(microseconds=1)
    assert DAILY.last_instant(day(2.5)) == day(3) - timedelta(microseconds=1)
