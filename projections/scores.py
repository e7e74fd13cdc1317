"""Per-customer scores: the pure value functions composed, with their parameters.

`score_customer` answers for one customer as of a time; `score_base` adds what needs the
whole customer base (RFM quintiles, value tiers). Both are pure: the caller brings the
customer's events (from the timeline) and the as-of time.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from projections.engagement import (
    DEFAULT_ENGAGEMENT,
    EngagementParameters,
    EngagementScore,
    Interaction,
    engagement_score,
    interaction_from_event,
)
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
    Purchase,
    PurchaseSummary,
    Refund,
    RfmInput,
    RfmScore,
    RfmWeights,
    ServiceCostRule,
    ServiceTicket,
    ShareOfWallet,
    StatedCategorySpend,
    TierAssignment,
    TierRule,
    assign_value_tiers,
    customer_lifetime_value,
    net_contribution,
    past_customer_value,
    probability_active,
    purchase_from_event,
    refund_from_event,
    rfm_input,
    score_rfm,
    share_of_wallet,
    stated_spend_from_event,
    summarize_purchases,
    ticket_from_event,
)
from schemas import Envelope, Payload
from schemas.payloads.commerce import Purchased, Refunded
from schemas.payloads.support import TicketOpened
from schemas.payloads.survey import SurveyResponded


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


@dataclass(frozen=True)
class CustomerHistory:
    """What the scores are computed from, taken out of a customer's events."""

    customer_id: str
    purchases: list[Purchase] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    tickets: list[ServiceTicket] = field(default_factory=list)
    statements: list[StatedCategorySpend] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)

    @classmethod
    def from_events(cls, customer_id: str, events: Iterable[Envelope]) -> CustomerHistory:
        history = cls(customer_id)
        for event in events:
            history.add(event)
        return history

    def add(self, event: Envelope) -> None:
        take = _TAKEN_FROM.get(type(event.payload))
        if take:
            take(self, event)
        interaction = interaction_from_event(event)
        if interaction is not None:
            self.interactions.append(interaction)


_TAKEN_FROM: dict[type[Payload], Callable[[CustomerHistory, Envelope], None]] = {
    Purchased: lambda h, e: h.purchases.append(purchase_from_event(e)),
    Refunded: lambda h, e: h.refunds.append(refund_from_event(e)),
    TicketOpened: lambda h, e: h.tickets.append(ticket_from_event(e)),
    SurveyResponded: lambda h, e: h.statements.extend(stated_spend_from_event(e)),
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
        return out


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
    purchases = history.purchases
    margin = params.margin
    return CustomerScores(
        customer_id=history.customer_id,
        as_of=as_of,
        summary=summarize_purchases(purchases, as_of=as_of),
        p_active=probability_active(purchases, as_of=as_of),
        past_value=past_customer_value(
            purchases,
            as_of=as_of,
            refunds=history.refunds,
            params=PastValueParameters(params.annual_rate, margin),
        ),
        lifetime_value=customer_lifetime_value(
            purchases,
            as_of=as_of,
            params=LifetimeValueParameters(
                params.annual_rate,
                params.horizon_years,
                margin,
                weight_by_p_active=params.weight_clv_by_p_active,
            ),
        ),
        net_contribution=net_contribution(
            purchases,
            as_of=as_of,
            refunds=history.refunds,
            tickets=history.tickets,
            costs=ServiceCostRule(margin, params.cost_per_ticket, params.cost_per_refund),
        ),
        share_of_wallet=share_of_wallet(history.statements, purchases, as_of=as_of),
        engagement=engagement_score(history.interactions, as_of=as_of, params=params.engagement),
        rfm_input=rfm_input(history.customer_id, purchases, as_of=as_of),
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
