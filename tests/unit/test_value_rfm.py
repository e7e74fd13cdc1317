"""RFM: mid-rank quintile scores across the base, weighted sum, deterministic ties."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.errors import MixedCurrencies, ScoringInputError
from projections.value import RfmInput, RfmWeights, rfm_input, score_rfm
from tests.unit.value_factories import day, purchase

AS_OF = day(100)


def _customer(
    customer_id: str, days_since: float, count: int, spend: str, currency: str = "USD"
) -> RfmInput:
    return RfmInput(customer_id, AS_OF, days_since, count, Decimal(spend), currency)


def test_rfm_input_measures_recency_count_and_total_spend_up_to_as_of() -> None:
    history = [purchase(10, "5"), purchase(90, "20"), purchase(99.5, "1"), purchase(150, "99")]
    measured = rfm_input("c1", history, as_of=AS_OF)
    assert measured is not None
    assert measured.days_since_last_purchase == pytest.approx(0.5)
    assert (measured.purchase_count, measured.total_spend) == (3, Decimal("26"))
    assert len(measured.event_ids) == 3
    assert rfm_input("c2", [purchase(150)], as_of=AS_OF) is None


def test_ten_distinct_customers_split_two_per_quintile() -> None:
    base = [_customer(f"c{i}", days_since=100 - i, count=i, spend=str(i)) for i in range(10)]
    scores = score_rfm(base)
    assert [scores[f"c{i}"].frequency_score for i in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # The most recent buyer (fewest days since) scores 5 on recency.
    assert scores["c9"].recency_score == 5 and scores["c0"].recency_score == 1
    assert scores["c9"].value == 15.0


def test_weights_make_the_weighted_sum() -> None:
    base = [_customer("a", 1, 1, "100"), _customer("b", 50, 9, "1")]
    scores = score_rfm(base, weights=RfmWeights(recency=0.5, frequency=0.2, monetary=0.3))
    a = scores["a"]
    assert a.value == pytest.approx(0.5 * a.recency_score + 0.2 * a.frequency_score + 0.3 * 4)
    assert a.inputs["weights"] == (0.5, 0.2, 0.3)


def test_ties_share_a_score_and_an_all_equal_base_scores_three() -> None:
    base = [_customer(f"c{i}", 7, 2, "10") for i in range(6)]
    assert {
        (s.recency_score, s.frequency_score, s.monetary_score) for s in score_rfm(base).values()
    } == {(3, 3, 3)}
    # Half the base tied at the bottom, half at the top: 0.25 -> 2 and 0.75 -> 4.
    split = [_customer(f"c{i}", 1, 1 if i < 4 else 5, "1") for i in range(8)]
    assert sorted(s.frequency_score for s in score_rfm(split).values()) == [2] * 4 + [4] * 4


def test_a_single_customer_sits_in_the_middle() -> None:
    only = score_rfm([_customer("solo", 3, 1, "5")])["solo"]
    assert (only.recency_score, only.frequency_score, only.monetary_score) == (3, 3, 3)


def test_inconsistent_bases_are_refused() -> None:
    with pytest.raises(ScoringInputError, match="repeated"):
        score_rfm([_customer("a", 1, 1, "1"), _customer("a", 2, 2, "2")])
    with pytest.raises(MixedCurrencies):
        score_rfm([_customer("a", 1, 1, "1"), _customer("b", 2, 2, "2", currency="VND")])
    other_time = RfmInput("b", day(5), 1, 1, Decimal(1), "USD")
    with pytest.raises(ScoringInputError, match="as_of"):
        score_rfm([_customer("a", 1, 1, "1"), other_time])


_bases = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=30),
        st.integers(min_value=1, max_value=6),
        st.decimals(min_value=0, max_value=50, places=0),
    ),
    min_size=1,
    max_size=40,
)


@given(_bases, st.randoms(use_true_random=False))
def test_scores_do_not_depend_on_order_and_ties_always_agree(
    measures: list[tuple[int, int, Decimal]], rng: random.Random
) -> None:
    base = [RfmInput(f"c{i}", AS_OF, float(r), f, m, "USD") for i, (r, f, m) in enumerate(measures)]
    shuffled = list(base)
    rng.shuffle(shuffled)
    scores, again = score_rfm(base), score_rfm(shuffled)
    assert scores == again
    for one in base:
        for other in base:
            mine, theirs = scores[one.customer_id], scores[other.customer_id]
            assert 1 <= mine.recency_score <= 5
            if one.purchase_count == other.purchase_count:
                assert mine.frequency_score == theirs.frequency_score
            if one.purchase_count > other.purchase_count:
                assert mine.frequency_score >= theirs.frequency_score
            if one.days_since_last_purchase < other.days_since_last_purchase:
                assert mine.recency_score >= theirs.recency_score
            if one.total_spend > other.total_spend:
                assert mine.monetary_score >= theirs.monetary_score


@given(_bases)
def test_the_lineage_names_the_boundaries_every_customer_was_scored_by(
    measures: list[tuple[int, int, Decimal]],
) -> None:
    base = [RfmInput(f"c{i}", AS_OF, float(r), f, m, "USD") for i, (r, f, m) in enumerate(measures)]
    scores = score_rfm(base)
    quintiles = next(iter(scores.values())).inputs["quintiles"]
    assert isinstance(quintiles, Mapping)
    for customer in base:
        mine = scores[customer.customer_id]
        assert mine.inputs["quintiles"] is quintiles  # one record for the whole base
        for measure, value, score in (
            ("recency_days", customer.days_since_last_purchase, mine.recency_score),
            ("frequency", customer.purchase_count, mine.frequency_score),
            ("monetary", customer.total_spend, mine.monetary_score),
        ):
            ranges = {q: (low, high) for q, low, high in quintiles[measure]}
            low, high = ranges[score]
            assert low <= value <= high
    for measure, better_is_higher in (
        ("recency_days", False),
        ("frequency", True),
        ("monetary", True),
    ):
        ranges = quintiles[measure]  # best score first; ranges never overlap
        for (_, low, high), (_, next_low, next_high) in itertools.pairwise(ranges):
            assert (low > next_high) if better_is_higher else (high < next_low)
