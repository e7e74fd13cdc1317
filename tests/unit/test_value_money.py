"""Past value, lifetime value, net contribution and share of wallet."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from projections.errors import AsOfOutOfRange, MixedCurrencies
from projections.value import (
    LifetimeValueParameters,
    MarginRule,
    PastValueParameters,
    Purchase,
    Refund,
    ServiceCostRule,
    ServiceTicket,
    StatedCategorySpend,
    customer_lifetime_value,
    net_contribution,
    past_customer_value,
    share_of_wallet,
)
from tests.unit.value_factories import day, purchase, purchase_lists

YEAR = 365.25
MARGIN = MarginRule(default_rate=Decimal("0.25"))


def _refund(on: float, amount: str, order_id: str | None) -> Refund:
    return Refund(day(on), Decimal(amount), "USD", order_id=order_id)


# -------------------------------------------------------------------------------- PCV


def test_past_value_compounds_each_contribution_to_as_of() -> None:
    history = [
        purchase(0, "500", margin="100"),  # one year before as_of: 100 * 1.1
        purchase(YEAR, "200", order_id="o2"),  # at as_of, no margin: 200 * 0.25
    ]
    refund = _refund(YEAR, "100", "o2")  # half of o2 back: its contribution halves
    value = past_customer_value(
        history,
        as_of=day(YEAR),
        params=PastValueParameters(annual_rate=0.1, margin=MARGIN),
        refunds=[refund],
    )
    assert value.value == pytest.approx(110 + 50 - 25)
    assert value.inputs["gross_contribution"] == Decimal("150")
    assert value.inputs["refunded_contribution"] == Decimal("25")


def test_past_value_ignores_what_happened_after_as_of() -> None:
    params = PastValueParameters(annual_rate=0.05, margin=MARGIN)
    early = past_customer_value([purchase(0, margin="10")], as_of=day(10), params=params)
    with_future = past_customer_value(
        [purchase(0, margin="10"), purchase(20, margin="99")], as_of=day(10), params=params
    )
    assert early.value == with_future.value
    assert with_future.inputs["events_after_as_of"] == 1
    assert past_customer_value([], as_of=day(10), params=params).value == 0.0


# -------------------------------------------------------------------------------- CLV


def _three_purchases() -> list[Purchase]:
    return [purchase(d, "100", margin="30") for d in (0, 100, 200)]


def test_an_as_of_beyond_any_compounding_names_itself() -> None:
    params = PastValueParameters(annual_rate=0.1, margin=MARGIN)
    with pytest.raises(AsOfOutOfRange, match=r"as_of=9999-12-31.*years of compounding at 10%"):
        past_customer_value(
            [purchase(0, "100")], as_of=datetime(9999, 12, 31, tzinfo=UTC), params=params
        )


def test_lifetime_value_projects_margin_per_period_times_repeat_rate() -> None:
    params = LifetimeValueParameters(
        annual_discount_rate=0.1, horizon_years=3, margin=MARGIN, weight_by_p_active=False
    )
    clv = customer_lifetime_value(_three_purchases(), as_of=day(300), params=params)
    yearly = 30 * (2 / 300 * YEAR)  # 30 a purchase day, 2 repeat days in 300 days of life
    assert clv.yearly_margin == pytest.approx(yearly)
    assert clv.value == pytest.approx(sum(yearly / 1.1**t for t in (1, 2, 3)))
    assert clv.inputs["retention"] == 1.0


def test_lifetime_value_weighted_by_p_active() -> None:
    params = LifetimeValueParameters(annual_discount_rate=0.1, horizon_years=3, margin=MARGIN)
    clv = customer_lifetime_value(_three_purchases(), as_of=day(300), params=params)
    p_active = (200 / 300) ** 3
    assert clv.inputs["retention"] == pytest.approx(p_active)
    assert clv.yearly_margin == pytest.approx(30 * (2 / 300 * YEAR) * p_active)


def test_lifetime_value_of_one_time_or_no_buyers_is_zero() -> None:
    params = LifetimeValueParameters(annual_discount_rate=0.1, horizon_years=5, margin=MARGIN)
    assert customer_lifetime_value([purchase(0)], as_of=day(30), params=params).value == 0.0
    assert customer_lifetime_value([], as_of=day(30), params=params).value == 0.0


@given(
    purchase_lists,
    st.integers(min_value=0, max_value=20),
    st.floats(min_value=0.0, max_value=0.5),
)
def test_lifetime_value_grows_with_the_horizon_and_falls_with_the_rate(
    history: list[Purchase], horizon: int, rate: float
) -> None:
    history = [replace(p, margin=None) for p in history]  # non-negative contributions
    as_of = max(p.occurred_at for p in history) + timedelta(days=30)

    def clv(horizon_years: int, discount: float) -> float:
        params = LifetimeValueParameters(
            annual_discount_rate=discount, horizon_years=horizon_years, margin=MARGIN
        )
        return customer_lifetime_value(history, as_of=as_of, params=params).value

    assert 0.0 <= clv(horizon, rate) <= clv(horizon + 1, rate)
    assert clv(horizon, rate + 0.1) <= clv(horizon, rate) + 1e-9


# ------------------------------------------------------------------- net contribution


def test_net_contribution_subtracts_refunds_and_service_costs() -> None:
    costs = ServiceCostRule(
        margin=MARGIN, cost_per_ticket=Decimal("15"), cost_per_refund=Decimal("5")
    )
    history = [purchase(1, "100", margin="40", order_id="o1")]
    net = net_contribution(
        history,
        as_of=day(10),
        costs=costs,
        refunds=[_refund(2, "50", "o1")],  # half the order back: 20 of its 40
        tickets=[ServiceTicket(day(3)), ServiceTicket(day(4)), ServiceTicket(day(11))],
    )
    assert net.value == Decimal("40") - 20 - 5 - 2 * 15
    assert net.inputs["tickets"] == 2 and net.inputs["events_after_as_of"] == 1


def test_net_contribution_is_exact_at_zero() -> None:
    # In floats 0.1 + 0.2 - 0.3 is 5.6e-17: a customer who broke even would not be BZ
    # only by luck. In Decimal it is exactly zero.
    costs = ServiceCostRule(margin=MARGIN, cost_per_ticket=Decimal("0.3"))
    net = net_contribution(
        [purchase(0, "1", margin="0.1"), purchase(1, "1", margin="0.2")],
        as_of=day(2),
        costs=costs,
        tickets=[ServiceTicket(day(1))],
    )
    assert net.value == 0


def test_a_refund_of_an_unknown_order_takes_back_the_default_rate() -> None:
    costs = ServiceCostRule(margin=MARGIN, cost_per_ticket=Decimal(0))
    net = net_contribution(
        [purchase(0, "100", margin="60")],
        as_of=day(5),
        costs=costs,
        refunds=[_refund(1, "40", None)],
    )
    assert net.value == Decimal("60") - Decimal("40") * Decimal("0.25")


def test_money_in_two_currencies_is_refused() -> None:
    with pytest.raises(MixedCurrencies):
        net_contribution(
            [purchase(0), purchase(1, currency="VND")],
            as_of=day(2),
            costs=ServiceCostRule(margin=MARGIN, cost_per_ticket=Decimal(1)),
        )


# -------------------------------------------------------------------- share of wallet


def _stated(
    category: str,
    total: str,
    on: float,
    with_us: str | None = None,
    period_days: int = 365,
    currency: str = "USD",
) -> StatedCategorySpend:
    return StatedCategorySpend(
        category=category,
        total=Decimal(total),
        currency=currency,
        stated_at=day(on),
        with_us=None if with_us is None else Decimal(with_us),
        period_days=period_days,
    )


def test_share_from_the_survey_when_with_us_was_stated() -> None:
    wallet = share_of_wallet([_stated("shoes", "400", 10, with_us="100")], [], as_of=day(20))
    shoes = wallet.categories["shoes"]
    assert (shoes.share, shoes.with_us_from, shoes.headroom) == (0.25, "survey", Decimal(300))
    assert wallet.overall_share == 0.25
    assert wallet.annual_headroom == pytest.approx(300 * YEAR / 365)


def test_share_from_purchases_in_the_stated_period_otherwise() -> None:
    history = [
        purchase(15, "80", categories={"books": "50", "music": "30"}),
        purchase(50, "70", categories={"books": "70"}),  # stated period ends on day 40
        purchase(-40, "90", categories={"books": "90"}),  # before the 30-day period
    ]
    wallet = share_of_wallet([_stated("books", "200", 40, period_days=30)], history, as_of=day(60))
    books = wallet.categories["books"]
    assert (books.with_us, books.with_us_from, books.share) == (Decimal(50), "purchases", 0.25)
    assert books.event_ids == (history[0].event_id,)


def test_latest_statement_wins_and_later_ones_are_not_seen() -> None:
    statements = [
        _stated("tea", "100", 1, with_us="10"),
        _stated("tea", "100", 5, with_us="50"),
        _stated("tea", "100", 30, with_us="90"),
    ]
    assert share_of_wallet(statements, [], as_of=day(10)).categories["tea"].share == 0.5


def test_with_us_above_the_stated_total_widens_the_wallet() -> None:
    history = [purchase(1, "300", categories={"tea": "300"})]
    tea = share_of_wallet([_stated("tea", "100", 2)], history, as_of=day(3)).categories["tea"]
    assert (tea.size_of_wallet, tea.share, tea.headroom) == (Decimal(300), 1.0, Decimal(0))


def test_an_empty_wallet_has_no_share() -> None:
    wallet = share_of_wallet([_stated("tea", "0", 2)], [], as_of=day(3))
    assert wallet.categories["tea"].share is None and wallet.overall_share is None


def test_overall_share_scales_each_statement_to_a_year() -> None:
    statements = [
        _stated("a", "100", 1, with_us="50", period_days=365),
        _stated("b", "10", 1, with_us="0", period_days=73),  # 50 a year, none with us
    ]
    wallet = share_of_wallet(statements, [], as_of=day(2))
    assert wallet.overall_share == pytest.approx(50 / (100 + 50))


def test_purchases_in_another_currency_than_the_statement_are_refused() -> None:
    history = [purchase(1, "300", currency="EUR", categories={"tea": "300"})]
    with pytest.raises(MixedCurrencies, match="tea"):
        share_of_wallet([_stated("tea", "100", 2)], history, as_of=day(3))
