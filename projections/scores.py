"""Per-customer scores: the pure value functions composed, with their parameters.

`score_customer` answers for one customer as of a time; `score_base` adds what needs the
whole customer base (RFM quintiles, value tiers). Both are pure: the caller brings the
customer's events (from the timeline) and the as-of time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from projections.engagement import (
    DEFAULT_ENGAGEMENT,
    EngagementParameters,
    EngagementScore,
    engagement_score,
)
from projections.score_ledger import CustomerHistory
from projections.value import (
    DEFAULT_TIER_RULE,
    EQUAL_RFM_WEIGHTS,
    ActivityProbability,
    CustomerValue,
    LifetimeValue,
    LifetimeValueParameters,
    MarginRule,
    NetContribution,
    PastValue,
    PastValueParameters,
    PurchaseSummary,
    RfmInput,
    RfmScore,
    RfmWeights,
    ServiceCostRule,
    ShareOfWallet,
    TierAssignment,
    TierRule,
    assign_value_tiers,
    customer_lifetime_value,
    net_contribution,
    past_customer_value,
    probability_active,
    rfm_input,
    score_rfm,
    share_of_wallet,
    summarize_purchases,
)


@dataclass(frozen=True)
class ScoreParameters:
    """Every knob of the scores; changing one is a reason to rebuild the scores."""

    default_margin_rate: Decimal = Decimal("0.25")
    annual_rate: float = 0.10  # compounding for past value, discounting for CLV
    horizon_years: int = 3
    weight_clv_by_p_active: bool = True
    cost_per_ticket: Decimal = Decimal("15")
    cost_per_refund: Decimal = Decimal("5")
    rfm_weights: RfmWeights = EQUAL_RFM_WEIGHTS
    engagement: EngagementParameters = DEFAULT_ENGAGEMENT
    tiers: TierRule = DEFAULT_TIER_RULE

    @property
    def margin(self) -> MarginRule:
        return MarginRule(self.default_margin_rate)


DEFAULT_PARAMETERS = ScoreParameters()


def currencies(history: CustomerHistory, as_of: datetime) -> tuple[str | None, list[str]]:
    """The customer's primary currency, in which the single-number money scores are, and
    the others they paid in by as_of. Primary: the currency of most purchases; ties go to
    the currency of the latest of them, then the name; without purchases, the one of most
    refunds and stated spend. Money of different currencies is never added: each other
    currency gets its own figures (`by_currency`)."""
    weight: dict[str, tuple[int, datetime, int]] = {}
    never = datetime.min.replace(tzinfo=as_of.tzinfo)
    for purchase in history.purchases:
        if purchase.occurred_at <= as_of:
            n, latest, other = weight.get(purchase.currency, (0, never, 0))
            weight[purchase.currency] = (n + 1, max(latest, purchase.occurred_at), other)
    priced = [(r.currency, r.occurred_at) for r in history.refunds]
    priced += [(s.currency, s.stated_at) for s in history.statements]
    for currency, when in priced:
        if when <= as_of:
            n, latest, other = weight.get(currency, (0, never, 0))
            weight[currency] = (n, latest, other + 1)
    return primary_currency(weight)


def primary_currency(
    weight: Mapping[str, tuple[int, datetime, int]],
) -> tuple[str | None, list[str]]:
    """The primary currency and the others, from each currency's (purchases, latest
    purchase, refunds and statements): most purchases, then latest, then most other."""
    if not weight:
        return None, []
    primary = max(weight, key=lambda currency: (*weight[currency], currency))
    return primary, sorted(weight.keys() - {primary})


# The scores that rank a customer against the whole base (set by the population's
# ranking, not by `score_customer`).
BASE_RELATIVE_COLUMNS = (
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_score",
    "tier",
    "tier_reason",
)


@dataclass(frozen=True)
class CurrencyScores:
    """The money scores of a customer in one of their other currencies."""

    currency: str
    purchases: int
    monetary_value: float | None
    past_value: float
    clv: float
    net_contribution: Decimal
    event_ids: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "purchases": self.purchases,
            "monetary_value": self.monetary_value,
            "past_value": self.past_value,
            "clv": self.clv,
            "net_contribution": str(self.net_contribution),
        }


@dataclass(frozen=True)
class CustomerScores:
    customer_id: str
    as_of: datetime
    summary: PurchaseSummary | None
    p_active: ActivityProbability | None
    past_value: PastValue
    lifetime_value: LifetimeValue
    net_contribution: NetContribution
    share_of_wallet: ShareOfWallet
    engagement: EngagementScore
    rfm_input: RfmInput | None
    rfm: RfmScore | None = None
    tier: TierAssignment | None = None
    currency: str | None = None
    by_currency: tuple[CurrencyScores, ...] = ()

    def to_row(self) -> dict[str, Any]:
        """The flat row of the materialized scores table."""
        s = self.summary
        return {
            "customer_id": self.customer_id,
            "as_of": self.as_of,
            "frequency": s.frequency if s else None,
            "recency": s.recency if s else None,
            "t": s.age if s else None,
            "monetary_value": s.monetary_value if s else None,
            "p_active": self.p_active.value if self.p_active else None,
            "past_value": self.past_value.value,
            "clv": self.lifetime_value.value,
            "net_contribution": self.net_contribution.value,
            "share_of_wallet": self.share_of_wallet.overall_share,
            "engagement": self.engagement.value,
            "rfm_recency": self.rfm.recency_score if self.rfm else None,
            "rfm_frequency": self.rfm.frequency_score if self.rfm else None,
            "rfm_monetary": self.rfm.monetary_score if self.rfm else None,
            "rfm_score": self.rfm.value if self.rfm else None,
            "tier": self.tier.tier.value if self.tier else None,
            "tier_reason": self.tier.reason if self.tier else None,
            "currency": self.currency,
            "other_currencies": [c.to_json() for c in self.by_currency] or None,
        }

    def explain(self) -> dict[str, Any]:
        """Every score with the inputs and the events it came from (lineage)."""
        parts: Mapping[str, Any] = {
            "summary": self.summary,
            "p_active": self.p_active,
            "past_value": self.past_value,
            "lifetime_value": self.lifetime_value,
            "net_contribution": self.net_contribution,
            "share_of_wallet": self.share_of_wallet,
            "engagement": self.engagement,
            "rfm": self.rfm,
        }
        out: dict[str, Any] = {}
        for name, part in parts.items():
            if part is None:
                out[name] = None
                continue
            out[name] = {
                "inputs": _plain(part.inputs),
                "event_ids": [str(e) for e in part.event_ids],
            }
        if self.tier is not None:
            out["tier"] = {"reason": self.tier.reason, "inputs": _plain(self.tier.inputs)}
        out["currency"] = {
            "primary": self.currency,
            "rule": "money scores are in the currency of most purchases; each other "
            "currency is scored on its own (other_currencies), never added",
            "other_currencies": [
                {**c.to_json(), "event_ids": list(c.event_ids)} for c in self.by_currency
            ],
        }
        return out


def base_lineage(scored: Iterable[CustomerScores]) -> list[tuple[str, str, dict[str, Any]]]:
    """What a scored base was ranked by, once per ranking: ('rfm', currency, its quintile
    boundaries, base size and weights) for each currency RFM ranked within, and ('tiers',
    '', the cut-offs, base size and rule). Each customer's scores name the rest."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for s in scored:
        if s.rfm is not None and s.rfm_input is not None:
            rfm = s.rfm.inputs
            found.setdefault(
                ("rfm", s.rfm_input.currency),
                {
                    "base_size": rfm["base_size"],
                    "weights": _plain(rfm["weights"]),
                    "quintiles": _plain(rfm["quintiles"]),
                },
            )
        if s.tier is not None:
            tier = s.tier.inputs
            found.setdefault(
                ("tiers", ""),
                {
                    name: _plain(tier[name])
                    for name in ("base_size", "most_valuable_cutoff", "growable_cutoff", "rule")
                },
            )
    return [(kind, currency, lineage) for (kind, currency), lineage in sorted(found.items())]


def _plain(value: Any) -> Any:
    """Lineage as plain JSON-ready values (read-only mappings, tuples, dataclasses...)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    return str(value)  # Decimal, UUID, date, enums: their canonical text


def score_customer(
    history: CustomerHistory, *, as_of: datetime, params: ScoreParameters = DEFAULT_PARAMETERS
) -> CustomerScores:
    """Every score of one customer as of `as_of`. Money scores use the primary currency's
    money (`currencies`); P(Active) and engagement carry no money and use all."""
    primary, others = currencies(history, as_of)
    money = history.in_currency(primary)
    purchases = money.purchases
    return CustomerScores(
        customer_id=history.customer_id,
        as_of=as_of,
        summary=summarize_purchases(purchases, as_of=as_of),
        p_active=probability_active(history.purchases, as_of=as_of),
        past_value=_past_value(money, as_of, params),
        lifetime_value=_lifetime_value(money, as_of, params),
        net_contribution=_net_contribution(money, as_of, params),
        share_of_wallet=share_of_wallet(money.statements, purchases, as_of=as_of),
        engagement=engagement_score(history.interactions, as_of=as_of, params=params.engagement),
        rfm_input=rfm_input(history.customer_id, purchases, as_of=as_of),
        currency=primary,
        by_currency=tuple(
            _currency_scores(history.in_currency(other), other, as_of, params) for other in others
        ),
    )


def _past_value(money: CustomerHistory, as_of: datetime, params: ScoreParameters) -> PastValue:
    return past_customer_value(
        money.purchases,
        as_of=as_of,
        refunds=money.refunds,
        params=PastValueParameters(params.annual_rate, params.margin),
    )


def _lifetime_value(
    money: CustomerHistory, as_of: datetime, params: ScoreParameters
) -> LifetimeValue:
    return customer_lifetime_value(
        money.purchases,
        as_of=as_of,
        params=LifetimeValueParameters(
            params.annual_rate,
            params.horizon_years,
            params.margin,
            weight_by_p_active=params.weight_clv_by_p_active,
        ),
    )


def _net_contribution(
    money: CustomerHistory, as_of: datetime, params: ScoreParameters
) -> NetContribution:
    return net_contribution(
        money.purchases,
        as_of=as_of,
        refunds=money.refunds,
        tickets=money.tickets,
        costs=ServiceCostRule(params.margin, params.cost_per_ticket, params.cost_per_refund),
    )


def _currency_scores(
    money: CustomerHistory, currency: str, as_of: datetime, params: ScoreParameters
) -> CurrencyScores:
    # Tickets cost in the primary currency; here only what the money of this currency made.
    money = CustomerHistory(money.customer_id, money.purchases, money.refunds)
    summary = summarize_purchases(money.purchases, as_of=as_of)
    past = _past_value(money, as_of, params)
    lifetime = _lifetime_value(money, as_of, params)
    contribution = _net_contribution(money, as_of, params)
    return CurrencyScores(
        currency=currency,
        purchases=sum(1 for p in money.purchases if p.occurred_at <= as_of),
        monetary_value=summary.monetary_value if summary else None,
        past_value=past.value,
        clv=lifetime.value,
        net_contribution=contribution.value,
        event_ids=tuple(
            str(e) for e in sorted({*past.event_ids, *lifetime.event_ids, *contribution.event_ids})
        ),
    )


def score_base(
    histories: Iterable[CustomerHistory],
    *,
    as_of: datetime,
    params: ScoreParameters = DEFAULT_PARAMETERS,
) -> list[CustomerScores]:
    """Every customer's scores plus RFM quintiles and value tiers across the base.

    RFM ranks customers within their purchase currency (money in different currencies
    is not comparable without conversion); customers with no purchase get no RFM score.
    """
    scored = [score_customer(h, as_of=as_of, params=params) for h in histories]
    by_currency: dict[str, list[RfmInput]] = defaultdict(list)
    for s in scored:
        if s.rfm_input is not None:
            by_currency[s.rfm_input.currency].append(s.rfm_input)
    rfm: dict[str, RfmScore] = {}
    for inputs in by_currency.values():
        rfm.update(score_rfm(inputs, weights=params.rfm_weights))
    tiers = assign_value_tiers(
        [
            CustomerValue(
                customer_id=s.customer_id,
                as_of=as_of,
                past_value=s.past_value.value,
                lifetime_value=s.lifetime_value.value,
                net_contribution=s.net_contribution.value,
                share_of_wallet=s.share_of_wallet.overall_share,
                annual_wallet_headroom=s.share_of_wallet.annual_headroom,
            )
            for s in scored
        ],
        rule=params.tiers,
    )
    return [
        CustomerScores(
            **{**s.__dict__, "rfm": rfm.get(s.customer_id), "tier": tiers.get(s.customer_id)}
        )
        for s in scored
    ]
