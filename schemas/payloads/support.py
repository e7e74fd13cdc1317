"""Customer-service tickets: opened, updated, resolved (with satisfaction)."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field

from schemas.envelope import Channel, Payload
from schemas.payloads.common import Name, Note


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class _Ticket(Payload):
    channel = Channel.SUPPORT
    ticket_id: Name


class TicketOpened(_Ticket):
    event_type = "support.ticket_opened"
    subject: Name
    category: Name | None = None
    priority: Priority = Priority.NORMAL

    def summary(self) -> str:
        return f"ticket {self.ticket_id} opened ({self.priority.value}): {self.subject}"


class TicketUpdated(_Ticket):
    event_type = "support.ticket_updated"
    status: Name
    note: Note | None = None

    def summary(self) -> str:
        return f"ticket {self.ticket_id} now {self.status}"


class TicketResolved(_Ticket):
    event_type = "support.ticket_resolved"
    resolution: Note | None = None
    satisfaction: int | None = Field(default=None, ge=1, le=5, description="CSAT, 1 to 5")

    def summary(self) -> str:
        score = f", satisfaction {self.satisfaction}/5" if self.satisfaction else ""
        return f"ticket {self.ticket_id} resolved{score}"
