"""Field types shared by payloads: tags, sentiment, free-form values."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from schemas.text import NO_NUL, Name, Note, Text, Url

__all__ = [
    "FreeValue",
    "FreeValueKey",
    "Name",
    "Note",
    "Sentiment",
    "Tags",
    "Text",
    "Url",
    "check_free_integers",
    "check_free_values",
]

# -1 (very negative) .. +1 (very positive), as scored by the monitoring tool.
Sentiment = Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
Tags = Annotated[tuple[Name, ...], Field(max_length=50)]

FreeValueKey = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]
# JSON has no integer limit, but jsonb consumers and the projection's encoder use 64 bits.
FREE_INT_RANGE = range(-(2**63), 2**63)
FreeValue = (
    str
    | Annotated[int, Field(ge=FREE_INT_RANGE.start, le=FREE_INT_RANGE.stop - 1)]
    | Annotated[float, Field(allow_inf_nan=False)]
    | bool
    | None
)
"""A value of a free-form mapping (profile traits, custom-event properties): a JSON scalar."""

FREE_TEXT_LIMIT = 2000


def check_free_values(values: dict[str, FreeValue]) -> dict[str, FreeValue]:
    """Bound the strings of a free-form mapping as the typed fields are bounded.

    Checked here rather than in the `FreeValue` union so that a violation is one precise
    problem, not one per union member.
    """
    for key, value in values.items():
        if isinstance(value, str):
            if len(value) > FREE_TEXT_LIMIT:
                raise ValueError(f"{key!r} is longer than {FREE_TEXT_LIMIT} characters")
            if "\x00" in value:
                raise ValueError(f"{key!r} contains a NUL character")
    return values


def check_free_integers(values: object) -> object:
    """Refuse integers beyond 64 bits before validation, which would turn them into floats
    silently (the union's float member accepts what the bounded int member does not)."""
    if isinstance(values, dict):
        for key, value in values.items():
            is_int = isinstance(value, int) and not isinstance(value, bool)
            if is_int and value not in FREE_INT_RANGE:
                raise ValueError(f"{key!r} is an integer beyond 64 bits")
    return values
