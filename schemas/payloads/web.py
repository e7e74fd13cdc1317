"""Web: visits, page views, form submissions."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from schemas.envelope import Channel, Payload
from schemas.payloads.common import Name, Url

FieldValue = Annotated[str, StringConstraints(max_length=2000)]


class WebVisited(Payload):
    event_type = "web.visited"
    channel = Channel.WEB

    session_id: Name
    landing_url: Url
    referrer: Url | None = None
    utm: dict[Name, Name] = Field(default_factory=dict, max_length=10)
    user_agent: Name | None = None

    def summary(self) -> str:
        return f"visited {self.landing_url}"


class PageViewed(Payload):
    event_type = "web.page_viewed"
    channel = Channel.WEB

    url: Url
    title: Name | None = None
    referrer: Url | None = None
    session_id: Name | None = None

    def summary(self) -> str:
        return f"viewed {self.title or self.url}"


class FormSubmitted(Payload):
    event_type = "web.form_submitted"
    channel = Channel.WEB

    form_id: Name
    url: Url | None = None
    fields: dict[Name, FieldValue] = Field(default_factory=dict, max_length=200)

    def summary(self) -> str:
        return f"submitted form {self.form_id}"
