"""Survey answers: NPS, stated interests and needs, and stated category spend."""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, model_validator

from schemas.envelope import Channel, Frozen, Payload
from schemas.money import Amount, Currency
from schemas.payloads.common import Tags
from schemas.text import Name


class CategorySpend(Frozen):
    """What the customer says they spend in a category, with all firms and with us.

    `total` is the size of wallet for the category over `period_days`; share of wallet is
    `with_us / total` (with_us taken from purchases when the survey did not ask).
    """

    category: Name = Field(description="The product category asked about.")
    total: Amount = Field(description="Spend in the category with all firms.")
    with_us: Amount | None = Field(default=None, description="Of which with us.")
    currency: Currency
    period_days: int = Field(default=365, ge=1, le=3660, description="The period spoken of.")

    @model_validator(mode="after")
    def _with_us_within_total(self) -> Self:
        if self.with_us is not None and self.with_us > self.total:
            raise ValueError(f"with_us {self.with_us} exceeds the total {self.total}")
        return self


class SurveyResponded(Payload):
    """The customer answered a survey."""

    event_type = "survey.responded"
    channel = Channel.SURVEY
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "survey_id": "nps-2026-q1",
                    "nps": 9,
                    "interests": ["gardening", "power tools"],
                    "needs": ["faster delivery"],
                    "category_spend": [
                        {"category": "tools", "total": "600", "with_us": "250", "currency": "EUR"}
                    ],
                }
            ]
        }
    )

    survey_id: Name = Field(description="Which survey.")
    nps: int | None = Field(default=None, ge=0, le=10, description="Likelihood to recommend.")
    interests: Tags = Field(default=(), description="Interests the customer ticked.")
    needs: Tags = Field(default=(), description="Needs the customer stated.")
    category_spend: tuple[CategorySpend, ...] = Field(
        default=(), max_length=100, description="Stated spend, per category."
    )

    def summary(self) -> str:
        parts = [f"survey {self.survey_id}"]
        if self.nps is not None:
            parts.append(f"NPS {self.nps}")
        if self.interests:
            parts.append("interests: " + ", ".join(self.interests[:3]))
        return "; ".join(parts)
