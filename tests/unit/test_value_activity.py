"""P(Active) = T_ratio ** n (DOMAIN.md), its edge cases and properties."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.errors import ScoringInputError
from projections.value import Purchase, probability_active
from tests.unit.value_factories import day, purchase, purchase_lists

MONTH = 30.0


def test_textbook_example_eight_of_twelve_months_four_purchases() -> None:
    # Acquired at month 0, four purchases, the last at month 8, observed for 12 months.
    history = [purchase(MONTH * m) for m in (2, 4, 6, 8)]
    result = probability_active(history, as_of=day(MONTH * 12), acquired_at=day(0))
    assert result is not None
    assert result.inputs["time_ratio"] == pytest.approx(8 / 12)
    assert result.inputs["purchases"] == 4
    assert round(result.value, 4) == 0.1975


def test_acquisition_defaults_to_the_first_purchase() -> None:
    history = [purchase(0), purchase(MONTH * 4), purchase(MONTH * 8)]
    result = probability_active(history, as_of=day(MONTH * 12))
    assert result is not None
    assert result.value == pytest.approx((8 / 12) ** 3)
    assert result.inputs["acquisition_from"] == "first purchase"


def test_a_single_purchase_is_no_evidence_of_activity() -> None:
    result = probability_active([purchase(3)], as_of=day(10))
    assert result is not None and result.value == 0.0


def test_a_purchase_at_as_of_means_active() -> None:
    result = probability_active([purchase(0), purchase(10)], as_of=day(10))
    assert result is not None and result.value == 1.0


def test_acquired_at_as_of_is_defined_as_active() -> None:
    result = probability_active([purchase(10), purchase(10)], as_of=day(10))
    assert result is not None and result.value == 1.0


def test_no_purchase_by_as_of_has_no_probability() -> None:
    assert probability_active([purchase(11)], as_of=day(10)) is None


def test_acquisition_after_the_first_purchase_is_refused() -> None:
    with pytest.raises(ScoringInputError, match="acquired_at"):
        probability_active([purchase(1)], as_of=day(10), acquired_at=day(2))


def test_naive_as_of_is_refused() -> None:
    with pytest.raises(ScoringInputError, match="time zone"):
        probability_active([purchase(1)], as_of=day(10).replace(tzinfo=None))


@given(purchase_lists, st.integers(min_value=-100, max_value=1000))
def test_probability_is_within_zero_and_one(history: list[Purchase], offset: int) -> None:
    as_of = max(p.occurred_at for p in history) + timedelta(days=offset)
    result = probability_active(history, as_of=as_of)
    if result is not None:
        assert 0.0 <= result.value <= 1.0
        assert set(result.event_ids) <= {p.event_id for p in history}


@given(purchase_lists, st.integers(min_value=1, max_value=1000))
def test_waiting_without_a_purchase_never_raises_it(history: list[Purchase], days: int) -> None:
    now = max(p.occurred_at for p in history)
    earlier = probability_active(history, as_of=now)
    later = probability_active(history, as_of=now + timedelta(days=days))
    assert earlier is not None and later is not None
    assert later.value <= earlier.value


@given(purchase_lists, st.randoms(use_true_random=False))
def test_order_does_not_matter(history: list[Purchase], rng: random.Random) -> None:
    as_of = max(p.occurred_at for p in history) + timedelta(days=3)
    shuffled = list(history)
    rng.shuffle(shuffled)
    assert probability_active(history, as_of=as_of) == probability_active(shuffled, as_of=as_of)


@given(purchase_lists)
def test_a_purchase_at_as_of_always_gives_one(history: list[Purchase]) -> None:
    now = max(p.occurred_at for p in history) + timedelta(days=1)
    result = probability_active([*history, replace(history[0], occurred_at=now)], as_of=now)
    assert result is not None and result.value == 1.0
