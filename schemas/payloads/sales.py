"""Sales activity: approaches, appointments and meetings, by salesperson."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from schemas.envelope import Channel, Payload
from schemas.instant import Instant
from schemas.text import Name, Note


def _example(**specific: Any) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": [{"salesperson": "Sara Okafor", **specific}]})


class Approach(StrEnum):
    CALL = "call"
    EMAIL = "email"
    VISIT = "visit"
    EVENT = "event"
    SOCIAL = "social"
    REFERRAL = "referral"


class _Sales(Payload):
    personal_fields = frozenset({"notes"})
    channel = Channel.SALES
    salesperson: Name = Field(description="Who did it.")
    notes: Note | None = Field(default=None, description="The salesperson's notes.")


class SalesApproached(_Sales):
    """A salesperson approached the customer."""

    event_type = "sales.approached"
    model_config = _example(approach="event", notes="Met at the trade fair; wants a demo.")

    approach: Approach = Field(description="How.")

    def summary(self) -> str:
        return f"approached by {self.salesperson} via {self.approach.value}"


class AppointmentSet(_Sales):
    """An appointment with the customer was agreed."""

    event_type = "sales.appointment_set"
    personal_fields = frozenset({"notes", "location"})
    model_config = _example(scheduled_for="2026-04-14T10:00:00+02:00", location="Customer site")

    scheduled_for: Instant = Field(description="When the meeting is to take place.")
    location: Name | None = Field(default=None, description="Where, or 'video'.")

    def summary(self) -> str:
        return f"appointment with {self.salesperson} set for {self.scheduled_for:%Y-%m-%d %H:%M}"


class MeetingHeld(_Sales):
    """A meeting with the customer took place."""

    event_type = "sales.meeting_held"
    model_config = _example(duration_minutes=45, outcome="quote requested")

    duration_minutes: int | None = Field(default=None, ge=0, le=24 * 60, description="Length.")
    outcome: Name | None = Field(default=None, description="What came of it.")

    def summary(self) -> str:
        what = f": {self.outcome}" if self.outcome else ""
        return f"meeting held with {self.salesperson}{what}"


class MeetingCancelled(_Sales):
    """A planned meeting was cancelled."""

    event_type = "sales.meeting_cancelled"
    model_config = _example(cancelled_by="customer", reason="budget frozen")

    cancelled_by: Name | None = Field(default=None, description="'customer' or a salesperson.")
    reason: Name | None = Field(default=None, description="Why.")

    def summary(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"meeting with {self.salesperson} cancelled{why}"
