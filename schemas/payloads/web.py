"""Web: visits, page views, form submissions."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field

from schemas.envelope import Channel, Payload
from schemas.text import Name, Url, bounded_text

FieldValue = Annotated[str, bounded_text(2000)]


class WebVisited(Payload):
    """A visit (session) to the website began."""

    event_type = "web.visited"
    channel = Channel.WEB
    personal_fields = frozenset({"user_agent"})
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "s-20260301-8841",
                    "landing_url": "https://shop.example.com/garden",
                    "referrer": "https://www.google.com/",
                    "utm": {"source": "google", "medium": "cpc", "campaign": "spring"},
                    "user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 18_3 like Mac OS X)",
                }
            ]
        }
    )

    session_id: Name = Field(description="The analytics session id.")
    landing_url: Url = Field(description="The first page of the visit.")
    referrer: Url | None = Field(default=None, description="Where the visitor came from.")
    utm: dict[Name, Name] = Field(
        default_factory=dict, max_length=10, description="UTM parameters, without 'utm_'."
    )
    user_agent: Name | None = Field(default=None, description="The browser's user agent.")

    def summary(self) -> str:
        return f"visited {self.landing_url}"


class PageViewed(Payload):
    """A page of the website was viewed."""

    event_type = "web.page_viewed"
    channel = Channel.WEB
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "url": "https://shop.example.com/p/DRL-18V",
                    "title": "Cordless drill 18V",
                    "session_id": "s-20260301-8841",
                }
            ]
        }
    )

    url: Url = Field(description="The page.")
    title: Name | None = Field(default=None, description="The page's title.")
    referrer: Url | None = Field(default=None, description="The previous page.")
    session_id: Name | None = Field(default=None, description="The analytics session id.")

    def summary(self) -> str:
        return f"viewed {self.title or self.url}"


class FormSubmitted(Payload):
    """A form on the website was submitted."""

    event_type = "web.form_submitted"
    channel = Channel.WEB
    personal_fields = frozenset({"fields"})
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "form_id": "contact-sales",
                    "url": "https://shop.example.com/business",
                    "fields": {"company": "Nguyen Builders", "team_size": "12"},
                }
            ]
        }
    )

    form_id: Name = Field(description="Which form.")
    url: Url | None = Field(default=None, description="The page the form was on.")
    fields: dict[Name, FieldValue] = Field(
        default_factory=dict, max_length=200, description="The submitted values, by field name."
    )

    def summary(self) -> str:
        return f"submitted form {self.form_id}"
