"""Timeline projector: each touchpoint becomes one entry on its customer's timeline. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from projections.score_ledger import ledger_entry
from schemas import Envelope


@dataclass(frozen=True)
class TimelineEntry:
    event_id: UUID
    customer_id: str
    occurred_at: datetime
    received_at: datetime | None
    channel: str
    type: str
    summary: str
    campaign_id: str | None
    payload: dict[str, Any]
    score_inputs: dict[str, Any]  # projections/score_ledger.py
    source: str = ""  # the system that emitted it: an event id belongs to one source


def timeline_entry(event: Envelope) -> TimelineEntry:
    return TimelineEntry(
        event_id=event.event_id,
        customer_id=event.customer.partition_key,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        channel=event.channel.value,
        type=event.type,
        summary=event.payload.summary(),
        campaign_id=event.campaign_id,
        payload=event.payload.model_dump(mode="json", exclude_none=True),
        score_inputs=ledger_entry(event),
        source=event.source.system,
    )
