"""Net contribution: what a customer returned after refunds and the cost of serving them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from uuid import UUID

from projections.lineage import frozen_inputs, happened_by, require_aware, source_event_ids
from projections.value.common import ZERO, single_currency
from projections.value.inputs import Purchase, Refund, ServiceTicket, orders_by_id
from projections.value.lifetime import MarginRule


@dataclass(frozen=True)
class ServiceCostRule:
    margin: MarginRule
    cost_per_ticket: Decimal
    cost_per_refund: Decimal = ZERO


@dataclass(frozen=True)
class NetContribution:
    value: Decimal
    inputs: Mapping[str, object]
    event_ids: tuple[UUID, ...]


def net_contribution(
    purchases: Iterable[Purchase],
    *,
    as_of: datetime,
    costs: ServiceCostRule,
    refunds: Iterable[Refund] = (),
    tickets: Iterable[ServiceTicket] = (),
) -> NetContribution:
    """What the customer has returned so far, net of what serving them cost, up to as_of:

      sum of contributions - sum of refunded contributions
        - cost_per_refund x refunds - cost_per_ticket x tickets opened

    Plain sums, exact in Decimal, not compounded: only the sign matters (below zero).
    """
    require_aware("as_of", as_of)
    observed, ignored = happened_by(purchases, as_of)
    observed_refunds, ignored_refunds = happened_by(refunds, as_of)
    observed_tickets, ignored_tickets = happened_by(tickets, as_of)
    single_currency("purchases and refunds", [*observed, *observed_refunds])
    orders = orders_by_id(observed)
    contribution = sum((costs.margin.contribution(p) for p in observed), ZERO)
    refunded = sum((costs.margin.refunded_contribution(r, orders) for r in observed_refunds), ZERO)
    refund_handling = costs.cost_per_refund * len(observed_refunds)
    ticket_handling = costs.cost_per_ticket * len(observed_tickets)
    return NetContribution(
        value=contribution - refunded - refund_handling - ticket_handling,
        inputs=frozen_inputs(
            as_of=as_of,
            contribution=contribution,
            refunded_contribution=refunded,
            refund_handling_cost=refund_handling,
            ticket_handling_cost=ticket_handling,
            default_margin_rate=costs.margin.default_rate,
            cost_per_ticket=costs.cost_per_ticket,
            cost_per_refund=costs.cost_per_refund,
            purchases=len(observed),
            refunds=len(observed_refunds),
            tickets=len(observed_tickets),
            events_after_as_of=ignored + ignored_refunds + ignored_tickets,
        ),
        event_ids=source_event_ids(observed, observed_refunds, observed_tickets),
    )
