"""The score ledger: what one event gives the scores, kept beside its timeline row.

Scores read a customer's history back from the timeline. Rebuilding and validating every
payload made that 0.3-1 s for a customer with 10,000 events; the ledger entry is the few
values the scores take from an event (its interaction, purchase, refund, ticket or stated
spend), folded once when the event is projected and read back as plain values. Money is
kept as decimal text, so it comes back exactly.

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

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from projections.engagement import Interaction, interaction_from_event
from projections.errors import ScoringInputError
from projections.scores import CustomerHistory
from projections.value import (
    Purchase,
    Refund,
    ServiceTicket,
    StatedCategorySpend,
    purchase_from_event,
    refund_from_event,
    stated_spend_from_event,
)
from schemas import Envelope
from schemas.payloads.commerce import Purchased, Refunded
from schemas.payloads.support import TicketOpened
from schemas.payloads.survey import SurveyResponded

Entry = dict[str, Any]


def ledger_entry(event: Envelope) -> Entry:
    """What `event` gives the scores (the same values `CustomerHistory.add` takes)."""
    try:
        return _entry(event)
    except ScoringInputError as refused:
        return {"e": str(refused)}


def _entry(event: Envelope) -> Entry:
    entry: Entry = {}
    interaction = interaction_from_event(event)
    if interaction is not None:
        entry["i"] = [interaction.channel, interaction.sentiment]
    payload = event.payload
    if isinstance(payload, Purchased):
        p = purchase_from_event(event)
        entry["p"] = {
            "a": str(p.amount),
            "c": p.currency,
            "m": None if p.margin is None else str(p.margin),
            "k": {k: str(v) for k, v in p.category_amounts.items()},
            "o": p.order_id,
        }
    elif isinstance(payload, Refunded):
        r = refund_from_event(event)
        entry["r"] = {"a": str(r.amount), "c": r.currency, "o": r.order_id}
    elif isinstance(payload, TicketOpened):
        entry["t"] = 1
    elif isinstance(payload, SurveyResponded):
        entry["s"] = [
            {
                "k": s.category,
                "a": str(s.total),
                "c": s.currency,
                "w": None if s.with_us is None else str(s.with_us),
                "d": s.period_days,
            }
            for s in stated_spend_from_event(event)
        ]
    return entry


def add_entry(
    history: CustomerHistory, event_id: UUID, occurred_at: datetime, entry: Mapping[str, Any]
) -> None:
    """Add an event's ledger entry to `history`, as `history.add(event)` would the event."""
    if (refused := entry.get("e")) is not None:
        raise ScoringInputError(refused)
    if (p := entry.get("p")) is not None:
        history.purchases.append(
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
        history.refunds.append(
            Refund(occurred_at, Decimal(r["a"]), r["c"], order_id=r["o"], event_id=event_id)
        )
    if "t" in entry:
        history.tickets.append(ServiceTicket(occurred_at, event_id=event_id))
    for s in entry.get("s", ()):
        history.statements.append(
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
        history.interactions.append(Interaction(occurred_at, i[0], i[1], event_id))
