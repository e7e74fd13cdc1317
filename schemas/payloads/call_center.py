"""Call-center calls, inbound or outbound."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from schemas.envelope import Channel, Payload, ShortText


class CallDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class CallOutcome(StrEnum):
    RESOLVED = "resolved"
    CALLBACK_SCHEDULED = "callback_scheduled"
    ESCALATED = "escalated"
    SALE = "sale"
    NO_ANSWER = "no_answer"
    VOICEMAIL = "voicemail"
    ABANDONED = "abandoned"
    OTHER = "other"


class CallCenterCall(Payload):
    """A call between the customer and the call center, when it ended."""

    event_type = "call_center.call"
    schema_version = 1
    channel = Channel.CALL_CENTER

    direction: CallDirection
    duration_seconds: int = Field(ge=0, le=86_400)
    agent: ShortText
    queue: ShortText | None = None
    outcome: CallOutcome
    topic: ShortText
    notes_summary: Annotated[str, StringConstraints(max_length=2000)] | None = None

    def summary(self) -> str:
        minutes, seconds = divmod(self.duration_seconds, 60)
        return (
            f"{self.direction.value} call about {self.topic} with {self.agent} "
            f"({minutes}m{seconds:02d}s): {self.outcome.value.replace('_', ' ')}"
        )
