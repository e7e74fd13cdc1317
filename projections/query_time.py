"""Times as analysts write them: ISO 8601, and what a bare date means.

An as-of date is the end of that day, inclusive: `--as-of 1998-06-30` counts the purchases
made on the 30th, as lifetimes' `observation_period_end` does. A date and time is that
instant; without an offset it is UTC. Other bounds (`since`, `until`) read a bare date as
its first instant.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from projections.errors import InvalidQuery

END_OF_DAY = time.max  # 23:59:59.999999, the last instant PostgreSQL and Python share


def parse_instant(value: str, parameter: str) -> datetime:
    """ISO 8601; a bare date is its midnight, a time without offset is UTC."""
    parsed = _parse(value, parameter)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_as_of(value: str, parameter: str = "as_of") -> datetime:
    """ISO 8601; a bare date is the end of that day (UTC), inclusive."""
    instant = parse_instant(value, parameter)
    return datetime.combine(instant.date(), END_OF_DAY, UTC) if _is_bare_date(value) else instant


def _is_bare_date(value: str) -> bool:
    try:
        date.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


def _parse(value: str, parameter: str) -> datetime:
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidQuery(parameter, f"{value!r} is not an ISO 8601 date or time") from None
