"""Customer-service tickets: opened, updated, resolved (with satisfaction)."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from schemas.envelope import Channel, Payload
from schemas.text import Name, Note


def _example(**specific: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [{"ticket_id": "ZD-58213", **specific}]})


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class _Ticket(Payload):
    channel = Channel.SUPPORT
    ticket_id: Name = Field(description="The help desk's ticket id.")


class TicketOpened(_Ticket):
    """The customer (or an agent for them) opened a support ticket."""

    event_type = "support.ticket_opened"
    personal_fields = frozenset({"subject"})
    model_config = _example(subject="Router keeps restarting", category="technical")

    subject: Name = Field(description="The ticket's subject.")
    category: Name | None = Field(default=None, description="The help desk's category.")
    priority: Priority = Field(default=Priority.NORMAL, description="As triaged.")

    def summary(self) -> str:
        return f"ticket {self.ticket_id} opened ({self.priority.value}): {self.subject}"


class TicketUpdated(_Ticket):
    """A ticket changed status."""

    event_type = "support.ticket_updated"
    personal_fields = frozenset({"note"})
    model_config = _example(status="waiting on customer", note="Asked for the router's model.")

    status: Name = Field(description="The help desk's new status.")
    note: Note | None = Field(default=None, description="What changed.")

    def summary(self) -> str:
        return f"ticket {self.ticket_id} now {self.status}"


class TicketResolved(_Ticket):
    """A ticket was resolved, with the customer's satisfaction when they rated it."""

    event_type = "support.ticket_resolved"
    personal_fields = frozenset({"resolution"})
    model_config = _example(resolution="Firmware updated remotely.", satisfaction=4)

    resolution: Note | None = Field(default=None, description="How it was resolved.")
    satisfaction: int | None = Field(default=None, ge=1, le=5, description="CSAT, 1 to 5")

    def summary(self) -> str:
        score = f", satisfaction {self.satisfaction}/5" if self.satisfaction else ""
        return f"ticket {self.ticket_id} resolved{score}"
