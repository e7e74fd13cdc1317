"""Survey answers: NPS, stated interests and needs, and stated category spend."""

from __future__ import annotations

from pydantic import Field

from schemas.envelope import Channel, Frozen, Payload
from schemas.money import Amount, Currency
from schemas.payloads.common import Name, Tags


class CategorySpend(Frozen):
    """What the customer says they spend in a category, with all firms and with us.

    `total` is the size of wallet for the category over `period_days`; share of wallet is
    `with_us / total` (with_us taken from purchases when the survey did not ask).
    """

    category: Name
    total: Amount
    with_us: Amount | None = None
    currency: Currency
    period_days: int = Field(default=365, ge=1, le=3660)


class SurveyResponded(Payload):
    event_type = "survey.responded"
    channel = Channel.SURVEY

    survey_id: Name
    nps: int | None = Field(default=None, ge=0, le=10)
    interests: Tags = Field(default_factory=list)
    needs: Tags = Field(default_factory=list)
    category_spend: list[CategorySpend] = Field(default_factory=list, max_length=100)

    def summary(self) -> str:
        parts = [f"survey {self.survey_id}"]
        if self.nps is not None:
            parts.append(f"NPS {self.nps}")
        if self.interests:
            parts.append("interests: " + ", ".join(self.interests[:3]))
        return "; ".join(parts)
