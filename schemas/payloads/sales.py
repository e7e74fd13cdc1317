"""Sales activity: approaches, appointments and meetings, by salesperson."""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime

from schemas.envelope import Channel, Payload
from schemas.payloads.common import Name, Note


class Approach(StrEnum):
    CALL = "call"
    EMAIL = "email"
    VISIT = "visit"
    EVENT = "event"
    SOCIAL = "social"
    REFERRAL = "referral"


class _Sales(Payload):
    channel = Channel.SALES
    salesperson: Name
    notes: Note | None = None


class SalesApproached(_Sales):
    event_type = "sales.approached"
    approach: Approach

    def summary(self) -> str:
        return f"approached by {self.salesperson} via {self.approach.value}"


class AppointmentSet(_Sales):
    event_type = "sales.appointment_set"
    scheduled_for: AwareDatetime
    location: Name | None = None

    def summary(self) -> str:
        return f"appointment with {self.salesperson} set for {self.scheduled_for:%Y-%m-%d %H:%M}"


class MeetingHeld(_Sales):
    event_type = "sales.meeting_held"
    duration_minutes: int | None = None
    outcome: Name | None = None

    def summary(self) -> str:
        what = f": {self.outcome}" if self.outcome else ""
        return f"meeting held with {self.salesperson}{what}"


class MeetingCancelled(_Sales):
    event_type = "sales.meeting_cancelled"
    cancelled_by: Name | None = None
    reason: Name | None = None

    def summary(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return f"meeting with {self.salesperson} cancelled{why}"
