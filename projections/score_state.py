"""Score state: per partition key, what every score needs, folded as events arrive.

A customer's scores are closed forms over a few sums (DOMAIN.md's formulas): purchase
days with their spend, contribution, past value compounded to a fixed epoch, refunds by
order, tickets, engagement decayed to a fixed epoch, the latest stated spend per category.
The worker folds each new event's ledger entry (projections/score_ledger.py) into the
state of the key it is filed under, in the batch's transaction; a customer known by
several keys combines their states when read. Scores as of any time at or after the
customer's last scored event are then computed from the state alone (`current_scores`),
equal to the pure on-demand fold (`projections.scores.score_customer`) up to float
rounding.

Order does not matter: every sum is exact (money in Decimal; compounded and decayed
terms, which are floats, are added without rounding: `ExactSum`), and every "latest" is
chosen by (time, event id). So live, replay and any arrival order give the same state, byte for
byte, and replay verification can compare it like any other table.

What the state cannot answer, `current_scores` says by returning None, and the caller
reads the customer's ledger instead: an as-of before the last scored event, share of
wallet measured from purchases (a survey that did not ask the spend with us), and
compounding beyond a float's range.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from projections.errors import AsOfOutOfRange, ScoringInputError
from projections.exact_sum import ExactSum
from projections.scores import DEFAULT_PARAMETERS, ScoreParameters, primary_currency
from projections.value.activity import activity_ratio
from projections.value.common import ZERO
from projections.value.lifetime import compounded, discounted, purchase_periods_per_year
from projections.value.summary import DAILY, summary_figures
from projections.value.wallet import per_year

EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # compounding and decay are kept relative to it
_DAY = timedelta(days=1)
_NEVER = datetime.min.replace(tzinfo=UTC)


def _order(at: datetime, event_id: str) -> tuple[datetime, str]:
    return at, event_id


@dataclass
class RefundSums:
    """The refunds of one order (or of none): amount, amount compounded to EPOCH, count."""

    amount: Decimal = ZERO
    compounded: ExactSum = field(default_factory=ExactSum)
    count: int = 0


@dataclass
class MoneyState:
    """The money of one currency."""

    purchases: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    spend_by_day: dict[int, Decimal] = field(default_factory=dict)  # DAILY period index
    contribution: Decimal = ZERO
    # The sum of contribution x growth ** ((EPOCH - t) / year).
    compounded: ExactSum = field(default_factory=ExactSum)
    # The latest purchase of each order id: (at, event_id, amount, contribution).
    orders: dict[str, tuple[datetime, str, Decimal, Decimal]] = field(default_factory=dict)
    refunds: dict[str | None, RefundSums] = field(default_factory=dict)
    statements: int = 0
    # The latest statement per category: (at, event_id, total, with_us, period_days).
    stated: dict[str, tuple[datetime, str, Decimal, Decimal | None, int]] = field(
        default_factory=dict
    )

    @property
    def refund_count(self) -> int:
        return sum(r.count for r in self.refunds.values())

    def remember_order(self, order_id: str, order: tuple[datetime, str, Decimal, Decimal]) -> None:
        """Keep an order's latest purchase (by time, then event id)."""
        held = self.orders.get(order_id)
        if held is None or order[:2] > held[:2]:
            self.orders[order_id] = order


@dataclass
class ScoreState:
    """What the scores of one key (or of a customer's keys combined) are computed from."""

    last_at: datetime | None = None  # the latest event that feeds a score
    money: dict[str, MoneyState] = field(default_factory=dict)
    tickets: int = 0
    # Per channel: sum of weight x warmth x 2 ** ((t - EPOCH) / half-life).
    engagement: dict[str, ExactSum] = field(default_factory=dict)
    refused: tuple[datetime, str, str] | None = None  # the earliest refused entry
    beyond_range: str | None = None  # compounding a float cannot hold: ledger path

    def fold(
        self,
        event_id: str,
        at: datetime,
        entry: Mapping[str, Any],
        params: ScoreParameters = DEFAULT_PARAMETERS,
    ) -> None:
        """Add one event's ledger entry."""
        if not entry:
            return
        self.last_at = at if self.last_at is None else max(self.last_at, at)
        if (refused := entry.get("e")) is not None:
            mine = (at, event_id, str(refused))
            if self.refused is None or mine[:2] < self.refused[:2]:
                self.refused = mine
            return
        try:
            if (p := entry.get("p")) is not None:
                self._purchase(event_id, at, p, params)
            if (r := entry.get("r")) is not None:
                self._refund(at, r, params)
        except AsOfOutOfRange as far:
            self.beyond_range = str(far)
        if "t" in entry:
            self.tickets += 1
        for s in entry.get("s", ()):
            money = self.money.setdefault(s["c"], MoneyState())
            money.statements += 1
            stated = (
                at,
                event_id,
                Decimal(s["a"]),
                None if s["w"] is None else Decimal(s["w"]),
                int(s["d"]),
            )
            held = money.stated.get(s["k"])
            if held is None or stated[:2] > held[:2]:
                money.stated[s["k"]] = stated
        if (i := entry.get("i")) is not None:
            self._interaction(at, i[0], i[1], params)

    def _purchase(
        self, event_id: str, at: datetime, p: Mapping[str, Any], params: ScoreParameters
    ) -> None:
        amount = Decimal(p["a"])
        margin = p["m"]
        rate = params.default_margin_rate
        contribution = Decimal(margin) if margin is not None else amount * rate
        compounded = float(contribution) * _growth(params, EPOCH, at)  # may refuse
        money = self.money.setdefault(p["c"], MoneyState())
        money.purchases += 1
        money.first_at = at if money.first_at is None else min(money.first_at, at)
        money.last_at = at if money.last_at is None else max(money.last_at, at)
        day = DAILY.index(at)
        money.spend_by_day[day] = money.spend_by_day.get(day, ZERO) + amount
        money.contribution += contribution
        money.compounded.add(compounded)
        if (order_id := p["o"]) is not None:
            money.remember_order(order_id, (at, event_id, amount, contribution))

    def _refund(self, at: datetime, r: Mapping[str, Any], params: ScoreParameters) -> None:
        amount = Decimal(r["a"])
        compounded = float(amount) * _growth(params, EPOCH, at)  # may refuse
        sums = self.money.setdefault(r["c"], MoneyState()).refunds.setdefault(r["o"], RefundSums())
        sums.amount += amount
        sums.compounded.add(compounded)
        sums.count += 1

    def _interaction(
        self, at: datetime, channel: str, sentiment: float | None, params: ScoreParameters
    ) -> None:
        e = params.engagement
        weight = e.weight(channel)
        if weight == 0:
            return
        warmth = 1.0 + e.sentiment_sensitivity * (sentiment or 0.0)
        whole, part = _split((at - EPOCH) / _DAY / e.half_life_days)
        into = self.engagement.get(channel)
        if into is None:
            into = self.engagement[channel] = ExactSum()
        into.add(weight * warmth * 2.0**part, whole)

    def merge(self, other: ScoreState) -> None:
        """Combine another key's state into this one (a customer known by both)."""
        self.last_at = _max(self.last_at, other.last_at)
        if other.refused is not None and (
            self.refused is None or other.refused[:2] < self.refused[:2]
        ):
            self.refused = other.refused
        self.beyond_range = self.beyond_range or other.beyond_range
        self.tickets += other.tickets
        for channel, value in other.engagement.items():
            self.engagement.setdefault(channel, ExactSum()).merge(value)
        for currency, theirs in other.money.items():
            mine = self.money.setdefault(currency, MoneyState())
            mine.purchases += theirs.purchases
            mine.first_at = _min(mine.first_at, theirs.first_at)
            mine.last_at = _max(mine.last_at, theirs.last_at)
            for day, spend in theirs.spend_by_day.items():
                mine.spend_by_day[day] = mine.spend_by_day.get(day, ZERO) + spend
            mine.contribution += theirs.contribution
            mine.compounded.merge(theirs.compounded)
            for order_id, order in theirs.orders.items():
                mine.remember_order(order_id, order)
            for order_ref, sums in theirs.refunds.items():
                into = mine.refunds.setdefault(order_ref, RefundSums())
                into.amount += sums.amount
                into.compounded.merge(sums.compounded)
                into.count += sums.count
            mine.statements += theirs.statements
            for category, stated in theirs.stated.items():
                held_statement = mine.stated.get(category)
                if held_statement is None or stated[:2] > held_statement[:2]:
                    mine.stated[category] = stated

    # -- storage: a JSON document, exact (money as decimal text, sums as ExactSum text) ----
    def to_json(self, *, with_orders: bool = True) -> dict[str, Any]:
        """The state as JSON; without its orders (one per purchase with an order id, so
        they grow with the history) where they are kept apart, as PostgreSQL does."""
        return {
            "last": _iso(self.last_at),
            "tickets": self.tickets,
            "engagement": {c: v.to_text() for c, v in sorted(self.engagement.items())},
            "refused": None if self.refused is None else [_iso(self.refused[0]), *self.refused[1:]],
            "beyond_range": self.beyond_range,
            "money": {c: _money_json(m, with_orders) for c, m in sorted(self.money.items())},
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ScoreState:
        refused = doc.get("refused")
        return cls(
            last_at=_at(doc["last"]),
            money={c: _money_from_json(m) for c, m in doc["money"].items()},
            tickets=doc["tickets"],
            engagement={c: ExactSum.from_text(v) for c, v in doc["engagement"].items()},
            refused=None if refused is None else (_required_at(refused[0]), refused[1], refused[2]),
            beyond_range=doc.get("beyond_range"),
        )


def refunded_orders(state: ScoreState) -> list[tuple[str, str]]:
    """(currency, order id) of every order a refund names: what reads need of orders."""
    return sorted(
        (currency, order_id)
        for currency, money in state.money.items()
        for order_id in money.refunds
        if order_id is not None
    )


def state_of(
    entries: Iterable[tuple[str, datetime, Mapping[str, Any]]],
    params: ScoreParameters = DEFAULT_PARAMETERS,
) -> ScoreState:
    """The state of (event_id, occurred_at, ledger entry) triples, in any order."""
    state = ScoreState()
    for event_id, at, entry in entries:
        state.fold(event_id, at, entry, params)
    return state


def combined(states: Iterable[ScoreState]) -> ScoreState:
    whole = ScoreState()
    for state in states:
        whole.merge(state)
    return whole


# -- scores from the state ------------------------------------------------------------------
def current_scores(
    state: ScoreState,
    customer_id: str,
    *,
    as_of: datetime,
    params: ScoreParameters = DEFAULT_PARAMETERS,
) -> dict[str, Any] | None:
    """The customer's scores as `CustomerScores.to_row` gives them (without the base's
    RFM and tier), or None when the state cannot tell (see the module's docstring)."""
    if state.last_at is not None and as_of < state.last_at:
        return None
    if state.refused is not None:
        raise ScoringInputError(state.refused[2])  # as reading the ledger would
    if state.beyond_range is not None:
        return None
    primary, others = _currencies(state)
    money = state.money.get(primary, MoneyState()) if primary is not None else MoneyState()
    if any(s[3] is None for s in money.stated.values()):
        return None  # share of wallet from purchases in the statement's period
    purchases = sum(m.purchases for m in state.money.values())
    first = min((m.first_at for m in state.money.values() if m.first_at), default=None)
    last = max((m.last_at for m in state.money.values() if m.last_at), default=None)
    frequency, recency, age, monetary = _summary(money, as_of) or (None, None, None, None)
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "as_of": as_of,
        "frequency": frequency,
        "recency": recency,
        "t": age,
        "monetary_value": monetary,
        "p_active": _p_active(purchases, first, last, as_of),
        "past_value": _past_value(money, as_of, params),
        "clv": _clv(money, as_of, params),
        "net_contribution": _net_contribution(money, state.tickets, params),
        "share_of_wallet": _share_of_wallet(money),
        "engagement": _engagement(state, as_of, params),
        "rfm_recency": None,
        "rfm_frequency": None,
        "rfm_monetary": None,
        "rfm_score": None,
        "tier": None,
        "tier_reason": None,
        "currency": primary,
        "other_currencies": [_other_currency(state.money[c], c, as_of, params) for c in others]
        or None,
    }
    return row


def ranking_measures(state: ScoreState) -> dict[str, Any]:
    """What RFM and the tiers rank a customer by, beyond `current_scores`: the last
    purchase, purchase count and spend in the primary currency (no purchase in it: no RFM),
    and the stated wallet's yearly headroom. Valid wherever `current_scores` answers."""
    primary, _ = _currencies(state)
    money = state.money.get(primary, MoneyState()) if primary is not None else MoneyState()
    bought = money.purchases > 0
    return {
        "rfm_last_purchase": money.last_at if bought else None,
        "rfm_purchases": money.purchases if bought else None,
        "rfm_spend": sum(money.spend_by_day.values(), ZERO) if bought else None,
        "annual_headroom": sum(
            per_year(max(total, with_us or ZERO) - (with_us or ZERO), days)
            for _, (_, _, total, with_us, days) in sorted(money.stated.items())
        ),
    }


def _currencies(state: ScoreState) -> tuple[str | None, list[str]]:
    """`projections.scores.currencies`, from the counts the state keeps."""
    weight = {
        currency: (m.purchases, m.last_at or _NEVER, m.refund_count + m.statements)
        for currency, m in state.money.items()
        if m.purchases or m.refund_count or m.statements
    }
    return primary_currency(weight)


def _summary(money: MoneyState, as_of: datetime) -> tuple[int, int, int, float] | None:
    if not money.spend_by_day:
        return None
    return summary_figures(money.spend_by_day, DAILY.index(as_of))


def _p_active(
    n: int, first: datetime | None, last: datetime | None, as_of: datetime
) -> float | None:
    if n == 0 or first is None or last is None:
        return None
    return float(activity_ratio(first, last, as_of) ** n)


def _refunded(money: MoneyState, params: ScoreParameters) -> list[tuple[Decimal, RefundSums]]:
    """Each order's refunds with the share of contribution they take back (MarginRule)."""
    out = []
    for order_id, sums in money.refunds.items():
        order = money.orders.get(order_id) if order_id is not None else None
        if order is None or order[2] == 0:
            out.append((params.default_margin_rate, sums))
        else:
            out.append((order[3] / order[2], sums))
    return out


def _past_value(money: MoneyState, as_of: datetime, params: ScoreParameters) -> float:
    if not money.purchases and not money.refunds:
        return 0.0
    growth = _growth(params, as_of, EPOCH)
    value = money.compounded.value() * growth
    for rate, sums in _refunded(money, params):
        value -= float(rate) * sums.compounded.value() * growth
    return value


def _clv(money: MoneyState, as_of: datetime, params: ScoreParameters) -> float:
    summary = _summary(money, as_of)
    if summary is None:
        return 0.0
    frequency, _, age, _ = summary
    per_period = float(money.contribution) / (frequency + 1)
    periods_per_year = purchase_periods_per_year(frequency, age, DAILY)
    retention = 1.0
    if params.weight_clv_by_p_active:
        retention = _p_active(money.purchases, money.first_at, money.last_at, as_of) or 0.0
    return discounted(
        per_period * periods_per_year * retention, params.annual_rate, params.horizon_years
    )


def _net_contribution(money: MoneyState, tickets: int, params: ScoreParameters) -> Decimal:
    refunded = sum((sums.amount * rate for rate, sums in _refunded(money, params)), ZERO)
    return (
        money.contribution
        - refunded
        - params.cost_per_refund * money.refund_count
        - params.cost_per_ticket * tickets
    )


def _share_of_wallet(money: MoneyState) -> float | None:
    with_us = size = 0.0
    for _, (_, _, total, stated_with_us, days) in sorted(money.stated.items()):
        assert stated_with_us is not None  # checked by the caller
        with_us += per_year(stated_with_us, days)
        size += per_year(max(total, stated_with_us), days)
    return with_us / size if size > 0 else None


def _engagement(state: ScoreState, as_of: datetime, params: ScoreParameters) -> float:
    whole, part = _split((as_of - EPOCH) / _DAY / params.engagement.half_life_days)
    scale: float = 0.5**part
    return sum(
        (value.value(-whole) * scale for _, value in sorted(state.engagement.items())),
        0.0,
    )


def _other_currency(
    money: MoneyState, currency: str, as_of: datetime, params: ScoreParameters
) -> dict[str, Any]:
    summary = _summary(money, as_of)
    return {
        "currency": currency,
        "purchases": money.purchases,
        "monetary_value": summary[3] if summary else None,
        "past_value": _past_value(money, as_of, params),
        "clv": _clv(money, as_of, params),
        "net_contribution": str(_net_contribution(money, 0, params)),
    }


# -- helpers --------------------------------------------------------------------------------
def _growth(params: ScoreParameters, later: datetime, earlier: datetime) -> float:
    return compounded(1.0 + params.annual_rate, later, earlier)


def _split(x: float) -> tuple[int, float]:
    whole = math.floor(x)
    return whole, x - whole


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def _at(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _money_json(m: MoneyState, with_orders: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "purchases": m.purchases,
        "first": _iso(m.first_at),
        "last": _iso(m.last_at),
        "days": {str(d): str(s) for d, s in sorted(m.spend_by_day.items())},
        "contribution": str(m.contribution),
        "compounded": m.compounded.to_text(),
        "refunds": sorted(
            ([o, str(r.amount), r.compounded.to_text(), r.count] for o, r in m.refunds.items()),
            key=lambda row: (row[0] is not None, row[0] or ""),
        ),
        "statements": m.statements,
        "stated": {
            k: [_iso(at), event_id, str(total), None if w is None else str(w), days]
            for k, (at, event_id, total, w, days) in sorted(m.stated.items())
        },
    }
    if with_orders:
        doc["orders"] = {
            o: [_iso(at), event_id, str(amount), str(contribution)]
            for o, (at, event_id, amount, contribution) in sorted(m.orders.items())
        }
    return doc


def _money_from_json(doc: Mapping[str, Any]) -> MoneyState:
    return MoneyState(
        purchases=doc["purchases"],
        first_at=_at(doc["first"]),
        last_at=_at(doc["last"]),
        spend_by_day={int(d): Decimal(s) for d, s in doc["days"].items()},
        contribution=Decimal(doc["contribution"]),
        compounded=ExactSum.from_text(doc["compounded"]),
        orders={
            o: (_required_at(at), event_id, Decimal(amount), Decimal(contribution))
            for o, (at, event_id, amount, contribution) in doc.get("orders", {}).items()
        },
        refunds={
            o: RefundSums(Decimal(amount), ExactSum.from_text(compounded), count)
            for o, amount, compounded, count in doc["refunds"]
        },
        statements=doc["statements"],
        stated={
            k: (_required_at(at), event_id, Decimal(total), None if w is None else Decimal(w), days)
            for k, (at, event_id, total, w, days) in doc["stated"].items()
        },
    )


def _required_at(text: str) -> datetime:
    return datetime.fromisoformat(text)
