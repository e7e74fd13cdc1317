"""Privacy control events: facts about the log itself that every rebuild applies."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from schemas.envelope import Channel, Payload
from schemas.text import Name


class CustomerErased(Payload):
    """A customer's personal data was erased (right to erasure, GDPR art. 17).

    Recorded after their data keys were destroyed: their sealed fields in the log can no
    longer be read, and every projection that reaches this event removes their rows again
    (a rebuild from offset 0 does, so a replay never brings them back). The event itself
    holds no personal data; put none in `reason`.
    """

    event_type = "privacy.erased"
    channel = Channel.PRIVACY
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "GDPR art. 17 request DSR-2026-0113", "identifiers": 4}]
        }
    )

    reason: Name = Field(description="Why, as the privacy team records it (a ticket number).")
    identifiers: int = Field(
        ge=0,
        le=1_000_000,
        description="How many identifiers of the customer are suppressed from now on.",
    )

    def summary(self) -> str:
        return f"erased ({self.reason})"
