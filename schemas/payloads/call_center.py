"""Call-center calls, inbound or outbound; version 1 is kept for the calls recorded under it."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from schemas.envelope import Channel, Payload
from schemas.text import Name, Note


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
    schema_version = 2
    channel = Channel.CALL_CENTER
    personal_fields = frozenset({"notes_summary"})
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "direction": "inbound",
                    "duration_seconds": 312,
                    "agent": "Linh Tran",
                    "queue": "billing",
                    "outcome": "resolved",
                    "topic": "billing",
                    "notes_summary": "Invoice higher than expected; explained the pro-rata charge.",
                }
            ]
        }
    )

    direction: CallDirection = Field(description="Who called whom.")
    duration_seconds: int = Field(ge=0, le=86_400, description="Talk time, in whole seconds.")
    agent: Name = Field(description="The agent who handled the call.")
    queue: Name | None = Field(default=None, description="The queue the call came through.")
    outcome: CallOutcome = Field(description="How the call ended.")
    topic: Name = Field(description="What the call was about, as the agent coded it.")
    notes_summary: Note | None = Field(default=None, description="The agent's summary.")

    def summary(self) -> str:
        minutes, seconds = divmod(self.duration_seconds, 60)
        return (
            f"{self.direction.value} call about {self.topic} with {self.agent} "
            f"({minutes}m{seconds:02d}s): {self.outcome.value.replace('_', ' ')}"
        )


class CallCenterCallV1(Payload):
    """A call, as the first telephony integration reported it (superseded by version 2).

    It gave the duration in milliseconds, said only whether the call resolved the matter,
    and had no queue.
    """

    event_type = "call_center.call"
    schema_version = 1
    channel = Channel.CALL_CENTER
    personal_fields = frozenset({"notes"})
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "direction": "outbound",
                    "duration_ms": 95_400,
                    "agent": "Minh Nguyen",
                    "resolved": False,
                    "topic": "upgrade",
                    "notes": "Interested in the premium plan; call back next week.",
                }
            ]
        }
    )

    direction: CallDirection = Field(description="Who called whom.")
    duration_ms: int = Field(ge=0, le=86_400_000, description="Talk time, in milliseconds.")
    agent: Name = Field(description="The agent who handled the call.")
    resolved: bool = Field(description="Whether the call resolved the customer's matter.")
    topic: Name = Field(description="What the call was about, as the agent coded it.")
    notes: Note | None = Field(default=None, description="The agent's notes.")


def upcast_v1_to_v2(v1: dict[str, Any]) -> dict[str, Any]:
    """Version 2 counts whole seconds (rounded half up) and names the outcome.

    A resolved v1 call becomes outcome 'resolved'; v1 did not record how an unresolved call
    ended, so those become 'other'. The queue stays unknown.
    """
    v2 = {key: value for key, value in v1.items() if key not in ("duration_ms", "resolved")}
    v2["duration_seconds"] = (v1["duration_ms"] + 500) // 1000
    v2["outcome"] = CallOutcome.RESOLVED.value if v1["resolved"] else CallOutcome.OTHER.value
    if "notes" in v2:
        v2["notes_summary"] = v2.pop("notes")
    return v2
