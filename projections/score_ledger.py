"""The score ledger: what one event gives the scores, and the history it folds into.

Scores are computed from a customer's history: purchases, refunds, tickets, stated spend
and interactions. An event gives that history a ledger entry, a few plain values kept
beside its timeline row, so scores read history back without validating every payload
again (that made them 0.3-1 s for a customer with 10,000 events). Entries are the one way
into a history: an event is added through its entry, whether the entry was just made or
read back from PostgreSQL. Money is kept as decimal text, so it comes back exactly.

An entry is a JSON object with any of these fields (`{}`: the event feeds no score):
  i: [channel, sentiment or null]                        an interaction (engagement)
  p: {a: amount, c: currency, m: margin?, k: {category: amount}, o: order id}
  r: {a: amount, c: currency, o: order id}                a refund
  t: 1                                                    a support ticket opened
  s: [{k: category, a: total, c: currency, w: with us?, d: period days}, ...]
  e: why the scores refuse the event's values (raised again when they are read, as the
     event itself would raise: the event stays on the timeline either way)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from projections.engagement import Interaction, interaction_from_event
from projections.errors import ScoringInputError
from projections.value import (
    Purchase,
    Refund,
    ServiceTicket,
    StatedCategorySpend,
    purchase_from_event,
    refund_from_event,
    stated_spend_from_event,
)
from schemas import Envelope, Payload
from schemas.payloads.commerce import Purchased, Refunded
from schemas.payloads.support import TicketOpened
from schemas.payloads.survey import SurveyResponded

Entry = dict[str, Any]


def _decimal(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _purchase(event: Envelope) -> Entry:
    p = purchase_from_event(event)
    return {
        "p": {
            "a": str(p.amount),
            "c": p.currency,
            "m": _decimal(p.margin),
            "k": {k: str(v) for k, v in p.category_amounts.items()},
            "o": p.order_id,
        }
    }


def _refund(event: Envelope) -> Entry:
    r = refund_from_event(event)
    return {"r": {"a": str(r.amount), "c": r.currency, "o": r.order_id}}


def _statements(event: Envelope) -> Entry:
    return {
        "s": [
            {
                "k": s.category,
                "a": str(s.total),
                "c": s.currency,
                "w": _decimal(s.with_us),
                "d": s.period_days,
            }
            for s in stated_spend_from_event(event)
        ]
    }


_ENTRY_OF: dict[type[Payload], Callable[[Envelope], Entry]] = {
    Purchased: _purchase,
    Refunded: _refund,
    TicketOpened: lambda _: {"t": 1},
    SurveyResponded: _statements,
}


def ledger_entry(event: Envelope) -> Entry:
    """What `event` gives the scores."""
    try:
        entry = _ENTRY_OF[type(event.payload)](event) if type(event.payload) in _ENTRY_OF else {}
        interaction = interaction_from_event(event)
    except ScoringInputError as refused:
        return {"e": str(refused)}
    if interaction is not None:
        entry["i"] = [interaction.channel, interaction.sentiment]
    return entry


@dataclass(frozen=True)
class CustomerHistory:
    """What the scores are computed from: a customer's ledger entries, folded."""

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
        self.add_entry(event.event_id, event.occurred_at, ledger_entry(event))

    def add_entry(self, event_id: UUID, occurred_at: datetime, entry: Mapping[str, Any]) -> None:
        """Add one event's ledger entry (as made, or as read back from PostgreSQL)."""
        if (refused := entry.get("e")) is not None:
            raise ScoringInputError(refused)
        if (p := entry.get("p")) is not None:
            self.purchases.append(
                Purchase(
                    occurred_at=occurred_at,
                    amount=Decimal(p["a"]),
                    currency=p["c"],
                    margin=None if p["m"] is None else Decimal(p["m"]),
                    category_amounts={k: Decimal(v) for k, v in p["k"].items()},
                    order_id=p["o"],
                    event_id=event_id,
                )
            )
        if (r := entry.get("r")) is not None:
            self.refunds.append(
                Refund(occurred_at, Decimal(r["a"]), r["c"], order_id=r["o"], event_id=event_id)
            )
        if "t" in entry:
            self.tickets.append(ServiceTicket(occurred_at, event_id=event_id))
        for s in entry.get("s", ()):
            self.statements.append(
                StatedCategorySpend(
                    category=s["k"],
                    total=Decimal(s["a"]),
                    currency=s["c"],
                    stated_at=occurred_at,
                    with_us=None if s["w"] is None else Decimal(s["w"]),
                    period_days=s["d"],
                    event_id=event_id,
                )
            )
        if (i := entry.get("i")) is not None:
            self.interactions.append(Interaction(occurred_at, i[0], i[1], event_id))

    def in_currency(self, currency: str | None) -> CustomerHistory:
        """The money of one currency (purchases, refunds, stated spend); tickets and
        interactions carry no money and stay whole."""
        return CustomerHistory(
            self.customer_id,
            purchases=[p for p in self.purchases if p.currency == currency],
            refunds=[r for r in self.refunds if r.currency == currency],
            tickets=self.tickets,
            statements=[s for s in self.statements if s.currency == currency],
            interactions=self.interactions,
        )
