"""E-mail lifecycle: sent, delivered, opened, clicked, replied, bounced, unsubscribed."""

from __future__ import annotations

from enum import StrEnum

from schemas.envelope import Channel, Payload
from schemas.payloads.common import Name, Note, Url


class _Email(Payload):
    channel = Channel.EMAIL

    message_id: Name
    campaign: Name | None = None
    subject: Name | None = None

    def summary(self) -> str:
        verb = self.event_type.split(".", 1)[1]
        about = f" “{self.subject}”" if self.subject else ""
        via = f" ({self.campaign})" if self.campaign else ""
        return f"e-mail{about}{via} {verb}"


class EmailSent(_Email):
    event_type = "email.sent"


class EmailDelivered(_Email):
    event_type = "email.delivered"


class EmailOpened(_Email):
    event_type = "email.opened"


class EmailClicked(_Email):
    event_type = "email.clicked"
    url: Url


class EmailReplied(_Email):
    event_type = "email.replied"
    reply_summary: Note | None = None


class BounceKind(StrEnum):
    HARD = "hard"
    SOFT = "soft"


class EmailBounced(_Email):
    event_type = "email.bounced"
    bounce: BounceKind
    reason: Name | None = None


class EmailUnsubscribed(_Email):
    event_type = "email.unsubscribed"
    list_name: Name | None = None
