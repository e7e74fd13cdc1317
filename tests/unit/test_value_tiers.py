"""Value tiers: BZ first, then the top past values (MVC), then growth potential (MGC)."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.errors import ScoringInputError
from projections.value import CustomerValue, TierRule, ValueTier, assign_value_tiers, tier_of
from tests.unit.value_factories import day

AS_OF = day(100)


def _value(
    customer_id: str,
    past: float,
    clv: float = 0.0,
    net: str = "1",
    share: float | None = None,
    headroom: float = 0.0,
) -> CustomerValue:
    return CustomerValue(customer_id, AS_OF, past, clv, Decimal(net), share, headroom)


def test_each_tier_by_its_rule() -> None:
    base = [
        _value("whale", past=1000, net="500"),
        _value("second", past=100),
        _value("costly", past=2000, net="-1"),  # highest past value, but costs more: BZ
        _value("rising", past=2, clv=900),
        _value("elsewhere", past=1, share=0.1, headroom=400),
        _value("loyal", past=1, share=0.9, headroom=400),
        *[_value(f"steady{i}", past=1, clv=5) for i in range(3)],
        _value("dormant", past=1),
    ]
    tiers = {c: a.tier for c, a in assign_value_tiers(base).items()}
    # N = 10, so k = 2 most valuable and k' = 2 growable by lifetime value (ties at the
    # second-highest lifetime value, 5, are all in).
    assert tiers == {
        "whale": ValueTier.MOST_VALUABLE,
        "second": ValueTier.MOST_VALUABLE,
        "costly": ValueTier.BELOW_ZERO,
        "rising": ValueTier.MOST_GROWABLE,
        "elsewhere": ValueTier.MOST_GROWABLE,
        "loyal": ValueTier.OTHER,
        "steady0": ValueTier.MOST_GROWABLE,
        "steady1": ValueTier.MOST_GROWABLE,
        "steady2": ValueTier.MOST_GROWABLE,
        "dormant": ValueTier.OTHER,
    }


def test_reason_and_inputs_explain_the_tier() -> None:
    tiers = assign_value_tiers([_value("a", past=10, net="-3.50")])
    assert tiers["a"].reason == "net contribution -3.50 < 0"
    assert tiers["a"].inputs["net_contribution"] == Decimal("-3.50")


def test_ties_at_the_cutoff_are_all_in() -> None:
    base = [_value(f"c{i}", past=50) for i in range(5)] + [_value("low", past=1)]
    tiers = assign_value_tiers(base, rule=TierRule(most_valuable_fraction=0.2))
    assert [tiers[f"c{i}"].tier for i in range(5)] == [ValueTier.MOST_VALUABLE] * 5
    assert tiers["low"].tier is ValueTier.OTHER


def test_nobody_without_value_is_most_valuable() -> None:
    tiers = assign_value_tiers([_value("a", past=0), _value("b", past=0)])
    assert {a.tier for a in tiers.values()} == {ValueTier.OTHER}


def test_fractions_do_not_round_up_a_customer() -> None:
    # 0.7 * 10 is 7.000000000000001 in floats; ceil must still give 7.
    base = [_value(f"c{i}", past=10 - i) for i in range(10)]
    tiers = assign_value_tiers(base, rule=TierRule(most_valuable_fraction=0.7))
    assert sum(a.tier is ValueTier.MOST_VALUABLE for a in tiers.values()) == 7


def test_bad_rules_and_bases_are_refused() -> None:
    with pytest.raises(ScoringInputError, match="most_valuable_fraction"):
        TierRule(most_valuable_fraction=1.5)
    with pytest.raises(ScoringInputError, match="repeated"):
        assign_value_tiers([_value("a", 1), _value("a", 2)])


_bases = st.lists(
    st.tuples(
        st.floats(min_value=-10, max_value=100),
        st.floats(min_value=0, max_value=100),
        st.integers(min_value=-5, max_value=50),
    ),
    min_size=1,
    max_size=30,
)


@given(_bases, st.randoms(use_true_random=False))
def test_tiers_do_not_depend_on_order(
    measures: list[tuple[float, float, int]], rng: random.Random
) -> None:
    base = [_value(f"c{i}", p, c, str(n)) for i, (p, c, n) in enumerate(measures)]
    shuffled = list(base)
    rng.shuffle(shuffled)
    tiers = assign_value_tiers(base)
    assert tiers == assign_value_tiers(shuffled)
    for customer in base:
        tier = tiers[customer.customer_id].tier
        assert (tier is ValueTier.BELOW_ZERO) == (customer.net_contribution < 0)
        if tier is ValueTier.MOST_VALUABLE:
            assert customer.past_value > 0


def test_each_reason_begins_with_the_word_of_its_rule() -> None:
    """The population scorer (projections/postgres/population.py) matches a stored reason
    to the rule that holds now by its first word, and words it again when they differ."""
    rule = TierRule()
    cases = {
        "net": _value("c", past=5, net="-2"),
        "past": _value("c", past=50),
        "lifetime": _value("c", past=1, clv=40),
        "share": _value("c", past=1, share=0.1, headroom=400),
        "none": _value("c", past=1),
    }
    for word, value in cases.items():
        _, reason = tier_of(value, rule, most_valuable_cutoff=10.0, growable_cutoff=30.0)
        assert reason.split(" ", 1)[0] == word, (word, reason)
