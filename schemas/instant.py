"""Instants: timezone-aware datetimes that every consumer of an event can store.

ISO 8601 and Python accept UTC offsets up to ±23:59 and any year from 1 to 9999 with any
offset, but PostgreSQL refuses offsets beyond ±15:59 and Python cannot convert
0001-01-01T00:00+05:00 or 9999-12-31T23:00-05:00 to UTC. An event carrying one of those
would be accepted here and refused by the projection write; it is refused at the edge
instead, naming the rule.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime

MAX_UTC_OFFSET = timedelta(hours=15, minutes=59, seconds=59)
"""The largest UTC offset PostgreSQL's timestamptz accepts (real zones stay within ±14:00)."""


def check_instant(value: datetime) -> datetime:
    offset = value.utcoffset()
    if offset is not None and abs(offset) > MAX_UTC_OFFSET:
        raise ValueError("the UTC offset must be between -15:59 and +15:59")
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time must fall within the years 1 to 9999 in UTC") from None
    return value


Instant = Annotated[AwareDatetime, AfterValidator(check_instant)]
"""A timezone-aware datetime with a storable offset, within years 1..9999 in UTC."""
