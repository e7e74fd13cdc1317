"""E-mail lifecycle: sent, delivered, opened, clicked, replied, bounced, unsubscribed."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field

from schemas.envelope import Channel, Payload
from schemas.text import Name, Note, Url


def _example(**specific: Any) -> ConfigDict:
    message = {"message_id": "msg-7f3a9", "campaign": "spring-sale", "subject": "Spring offers"}
    return ConfigDict(json_schema_extra={"examples": [{**message, **specific}]})


class _Email(Payload):
    personal_fields = frozenset({"subject"})
    channel = Channel.EMAIL

    message_id: Name = Field(description="The e-mail platform's message id.")
    campaign: Name | None = Field(default=None, description="The mailing or campaign name.")
    subject: Name | None = Field(default=None, description="The subject line.")

    def summary(self) -> str:
        verb = self.event_type.split(".", 1)[1]
        about = f" “{self.subject}”" if self.subject else ""
        via = f" ({self.campaign})" if self.campaign else ""
        return f"e-mail{about}{via} {verb}"


class EmailSent(_Email):
    """An e-mail was sent to the customer."""

    event_type = "email.sent"
    model_config = _example()


class EmailDelivered(_Email):
    """The receiving server accepted the e-mail."""

    event_type = "email.delivered"
    model_config = _example()


class EmailOpened(_Email):
    """The customer opened the e-mail (as far as tracking pixels can tell)."""

    event_type = "email.opened"
    model_config = _example()


class EmailClicked(_Email):
    """The customer followed a link in the e-mail."""

    event_type = "email.clicked"
    model_config = _example(url="https://shop.example.com/spring?utm_source=email")

    url: Url = Field(description="The link followed.")


class EmailReplied(_Email):
    """The customer replied to the e-mail."""

    event_type = "email.replied"
    personal_fields = frozenset({"subject", "reply_summary"})
    model_config = _example(reply_summary="Asks whether the offer applies to the garden range.")

    reply_summary: Note | None = Field(default=None, description="What the reply said.")


class BounceKind(StrEnum):
    HARD = "hard"
    SOFT = "soft"


class EmailBounced(_Email):
    """The e-mail could not be delivered."""

    event_type = "email.bounced"
    model_config = _example(bounce="hard", reason="550 mailbox unavailable")

    bounce: BounceKind = Field(description="hard: the address is dead; soft: try again later.")
    reason: Name | None = Field(default=None, description="The receiving server's reason.")


class EmailUnsubscribed(_Email):
    """The customer unsubscribed through the e-mail."""

    event_type = "email.unsubscribed"
    model_config = _example(list_name="newsletter")

    list_name: Name | None = Field(default=None, description="The list they left.")
