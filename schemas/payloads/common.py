"""Field types shared by payloads: bounded text, sentiment, URLs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

Text = Annotated[str, StringConstraints(max_length=4000)]
Note = Annotated[str, StringConstraints(max_length=2000)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
Url = Annotated[str, StringConstraints(min_length=1, max_length=2048, pattern=r"^\S+$")]
# -1 (very negative) .. +1 (very positive), as scored by the monitoring tool.
Sentiment = Annotated[float, Field(ge=-1.0, le=1.0, allow_inf_nan=False)]
Tags = Annotated[list[Name], Field(max_length=50)]
