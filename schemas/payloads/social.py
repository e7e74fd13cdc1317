"""Reactions to the brand's content on social platforms, and forum/community mentions."""

from __future__ import annotations

from schemas.envelope import Channel, Payload
from schemas.payloads.common import Name, Sentiment, Text, Url


class _Social(Payload):
    channel = Channel.SOCIAL

    platform: Name
    post: Url | None = None
    text: Text | None = None
    sentiment: Sentiment | None = None

    def summary(self) -> str:
        verb = self.event_type.split(".", 1)[1]
        said = f": “{_clip(self.text)}”" if self.text else ""
        return f"{verb} on {self.platform}{said}"


class SocialLiked(_Social):
    event_type = "social.liked"


class SocialShared(_Social):
    event_type = "social.shared"


class SocialCommented(_Social):
    event_type = "social.commented"
    text: Text


class SocialFollowed(_Social):
    event_type = "social.followed"


class SocialMentioned(_Social):
    event_type = "social.mentioned"
    text: Text


class CommunityMentioned(Payload):
    """The brand was mentioned in a forum or community thread."""

    event_type = "community.mentioned"
    channel = Channel.COMMUNITY

    community: Name
    thread: Name
    url: Url | None = None
    text: Text
    sentiment: Sentiment | None = None

    def summary(self) -> str:
        return f"mentioned in {self.community} / {self.thread}: “{_clip(self.text)}”"


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
