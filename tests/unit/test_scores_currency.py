"""A customer who pays in two currencies is scored, in one of them, never failed."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from projections.score_ledger import CustomerHistory
from projections.scores import currencies, score_base, score_customer
from projections.value import Refund
from tests.unit.value_factories import day, purchase


def _history(*purchases: object, refunds: tuple[Refund, ...] = ()) -> CustomerHistory:
    return CustomerHistory("c1", purchases=list(purchases), refunds=list(refunds))  # type: ignore[arg-type]


def test_money_scores_are_in_the_currency_of_most_purchases_the_others_apart() -> None:
    history = _history(purchase(0, "10"), purchase(5, "30"), purchase(9, "1000", currency="EUR"))
    scores = score_customer(history, as_of=day(20))

    assert scores.currency == "USD"
    alone_usd = score_customer(history.in_currency("USD"), as_of=day(20))
    assert scores.past_value == alone_usd.past_value
    assert scores.lifetime_value == alone_usd.lifetime_value
    assert scores.summary == alone_usd.summary
    (eur,) = scores.by_currency
    alone_eur = score_customer(history.in_currency("EUR"), as_of=day(20))
    assert (eur.currency, eur.purchases) == ("EUR", 1)
    assert eur.past_value == alone_eur.past_value.value
    assert eur.clv == alone_eur.lifetime_value.value
    # P(Active) reads purchases, not money: all three count.
    assert scores.p_active is not None and scores.p_active.inputs["purchases"] == 3
    assert scores.to_row()["other_currencies"][0]["currency"] == "EUR"
    assert scores.explain()["currency"]["primary"] == "USD"


def test_a_tie_goes_to_the_currency_of_the_latest_purchase() -> None:
    history = _history(purchase(0, currency="EUR"), purchase(3, currency="USD"))
    assert currencies(history, day(10)) == ("USD", ["EUR"])
    # As of a time before the USD purchase, only EUR had been paid.
    assert currencies(history, day(1)) == ("EUR", [])
    assert score_customer(history, as_of=day(1)).by_currency == ()


def test_a_refund_alone_names_the_currency() -> None:
    refund = Refund(occurred_at=day(1), amount=Decimal("5"), currency="VND")
    assert currencies(_history(refunds=(refund,)), day(2)) == ("VND", [])
    assert currencies(_history(), day(2)) == (None, [])


def test_one_customer_in_two_currencies_never_breaks_the_base() -> None:
    base = [
        CustomerHistory(f"c{n}", purchases=[purchase(n, "20"), purchase(n + 1, "5")])
        for n in range(10)
    ]
    odd = CustomerHistory(
        "odd", purchases=[purchase(2, "9", currency="EUR"), purchase(4, "7", currency="USD")]
    )
    scored = {s.customer_id: s for s in score_base([*base, odd], as_of=day(30))}
    assert scored["odd"].currency == "USD" and scored["odd"].rfm is not None
    assert [c.currency for c in scored["odd"].by_currency] == ["EUR"]
    assert all(s.tier is not None for s in scored.values())


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.sampled_from(["USD", "EUR", "VND"])),
        min_size=1,
        max_size=12,
    )
)
def test_any_mix_of_currencies_scores_and_each_currency_is_counted_once(
    paid: list[tuple[int, str]],
) -> None:
    history = _history(*(purchase(on, "10", currency=c) for on, c in paid))
    scores = score_customer(history, as_of=day(60))
    counted = {c.currency: c.purchases for c in scores.by_currency}
    assert scores.currency is not None and scores.currency not in counted
    counted[scores.currency] = sum(1 for _, c in paid if c == scores.currency)
    assert counted == {c: sum(1 for _, x in paid if x == c) for c in {c for _, c in paid}}
    assert counted[scores.currency] == max(counted.values())
