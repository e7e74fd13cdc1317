"""Bounded text: every string in the contract has a length limit and no NUL character.

The limits keep one event from bloating a partition or a projection row. NUL is refused
because PostgreSQL can store it neither in text nor in jsonb: one such event would stop the
worker at the projection write instead of being rejected here, at the edge.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import StringConstraints

NO_NUL = r"^[^\x00]*$"
NO_SPACE_OR_NUL = r"^[^\s\x00]+$"

PATTERN_RULES = {
    NO_NUL: "must not contain a NUL character (PostgreSQL cannot store one)",
    NO_SPACE_OR_NUL: "must not contain whitespace or a NUL character",
}
"""Plain-language rules for the patterns above, used in validation messages."""


def bounded_text(max_length: int, *, min_length: int = 0) -> StringConstraints:
    """The constraints of a text field of at most `max_length` characters, without NUL."""
    return StringConstraints(min_length=min_length, max_length=max_length, pattern=NO_NUL)


# Leading and trailing whitespace is stripped from every string (see `Frozen`) before the
# length is checked, so a required name cannot be blank.
Name = Annotated[str, bounded_text(200, min_length=1)]
"""A short label or identifier: an agent, an order id, a platform, a campaign."""

Note = Annotated[str, bounded_text(2000)]
"""Free text written by a person about the touchpoint: call notes, a resolution."""

Text = Annotated[str, bounded_text(4000)]
"""Text the customer wrote: a comment, a post, a forum message."""

Url = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=NO_SPACE_OR_NUL)]
"""A URL as the source reported it; not resolved or normalised."""
