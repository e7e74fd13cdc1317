"""ExactSum adds floats without rounding: any order gives the same sum, as text too."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from projections.exact_sum import ExactSum

_finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)


@given(st.lists(st.tuples(_finite, st.integers(-400, 400)), max_size=40), st.randoms())
def test_any_order_and_any_grouping_give_the_same_sum(
    terms: list[tuple[float, int]], order: random.Random
) -> None:
    forwards = ExactSum()
    for x, shift in terms:
        forwards.add(x, shift)
    shuffled = list(terms)
    order.shuffle(shuffled)
    halves = ExactSum(), ExactSum()
    for n, (x, shift) in enumerate(shuffled):
        halves[n % 2].add(x, shift)
    halves[0].merge(halves[1])
    assert halves[0] == forwards
    assert ExactSum.from_text(forwards.to_text()) == forwards


@given(st.lists(_finite, max_size=40))
def test_the_value_is_the_correctly_rounded_sum(terms: list[float]) -> None:
    total = ExactSum()
    for x in terms:
        total.add(x)
    exact = math.fsum(terms)  # correctly rounded as well
    assert math.isclose(total.value(), exact, rel_tol=1e-15, abs_tol=1e-300)


def test_a_scaled_term_is_read_back_scaled() -> None:
    total = ExactSum()
    total.add(0.75, 300)
    assert total.value(-300) == 0.75
    assert total.value(-299) == 1.5
    assert ExactSum().value() == 0.0 and ExactSum().to_text() == "0p0"
