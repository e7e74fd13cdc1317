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
    "check_free_values",
]

# -1 (very negative) .. +1 (very positive), as scored by the monitoring tool.
Sentiment = Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
Tags = Annotated[tuple[Name, ...], Field(max_length=50)]

FreeValueKey = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_NUL)]
FreeValue = str | int | Annotated[float, Field(allow_inf_nan=False)] | bool | None
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
