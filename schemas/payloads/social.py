"""Reactions to the brand's content on social platforms, and forum/community mentions."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from schemas.envelope import Channel, Payload
from schemas.payloads.common import Sentiment
from schemas.text import Name, Text, Url


def _example(**specific: Any) -> ConfigDict:
    post = {"platform": "instagram", "post": "https://instagram.com/p/Cx1a2b3"}
    return ConfigDict(json_schema_extra={"examples": [{**post, **specific}]})


class _Social(Payload):
    personal_fields = frozenset({"text"})
    channel = Channel.SOCIAL

    platform: Name = Field(description="The network, e.g. 'instagram', 'x', 'facebook'.")
    post: Url | None = Field(default=None, description="The brand's post reacted to.")
    text: Text | None = Field(default=None, description="What the customer wrote.")
    sentiment: Sentiment | None = Field(
        default=None, description="-1 (very negative) to +1 (very positive), if scored."
    )

    def summary(self) -> str:
        verb = self.event_type.split(".", 1)[1]
        said = f": “{_clip(self.text)}”" if self.text else ""
        return f"{verb} on {self.platform}{said}"


class SocialLiked(_Social):
    """The customer liked a post of the brand."""

    event_type = "social.liked"
    model_config = _example()


class SocialShared(_Social):
    """The customer shared a post of the brand."""

    event_type = "social.shared"
    model_config = _example(text="Look at this!", sentiment=0.6)


class SocialCommented(_Social):
    """The customer commented on a post of the brand."""

    event_type = "social.commented"
    model_config = _example(text="Is the blue one back in stock?", sentiment=0.1)

    text: Text = Field(description="The comment.")


class SocialFollowed(_Social):
    """The customer followed the brand's account."""

    event_type = "social.followed"
    model_config = ConfigDict(json_schema_extra={"examples": [{"platform": "x"}]})


class SocialMentioned(_Social):
    """The customer mentioned the brand in a post of their own."""

    event_type = "social.mentioned"
    model_config = _example(text="Third late delivery this month @brand", sentiment=-0.8)

    text: Text = Field(description="The post.")


class CommunityMentioned(Payload):
    """The brand was mentioned in a forum or community thread."""

    event_type = "community.mentioned"
    channel = Channel.COMMUNITY
    personal_fields = frozenset({"text"})
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "community": "reddit r/homeimprovement",
                    "thread": "Best cordless drill under 150?",
                    "url": "https://reddit.com/r/homeimprovement/comments/abc123",
                    "text": "Mine has lasted five years, customer service replaced the battery.",
                    "sentiment": 0.7,
                }
            ]
        }
    )

    community: Name = Field(description="The forum or community.")
    thread: Name = Field(description="The thread's title.")
    url: Url | None = Field(default=None, description="Link to the message.")
    text: Text = Field(description="The message mentioning the brand.")
    sentiment: Sentiment | None = Field(
        default=None, description="-1 (very negative) to +1 (very positive), if scored."
    )

    def summary(self) -> str:
        return f"mentioned in {self.community} / {self.thread}: “{_clip(self.text)}”"


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
