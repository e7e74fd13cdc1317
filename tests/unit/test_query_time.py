"""What an analyst's as-of means: a bare date is the end of that day, inclusive."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from projections.errors import InvalidQuery
from projections.query_time import parse_as_of, parse_instant


def test_a_bare_date_as_of_includes_the_whole_day() -> None:
    as_of = parse_as_of("1998-06-30")
    assert as_of == datetime(1998, 6, 30, 23, 59, 59, 999999, tzinfo=UTC)
    last_purchase_of_the_day = datetime(1998, 6, 30, 23, 59, 59, tzinfo=UTC)
    first_of_the_next = datetime(1998, 7, 1, tzinfo=UTC)
    assert last_purchase_of_the_day <= as_of < first_of_the_next


def test_a_time_is_that_instant_and_utc_without_an_offset() -> None:
    assert parse_as_of("1998-06-30T00:00") == datetime(1998, 6, 30, tzinfo=UTC)
    assert parse_as_of("1998-06-30T12:00:00+07:00") == datetime(
        1998, 6, 30, 12, tzinfo=timezone(timedelta(hours=7))
    )


def test_bounds_read_a_bare_date_as_its_first_instant() -> None:
    assert parse_instant("1998-06-30", "since") == datetime(1998, 6, 30, tzinfo=UTC)


def test_a_malformed_time_names_the_parameter() -> None:
    with pytest.raises(InvalidQuery, match="invalid as_of: '30/06/1998'"):
        parse_as_of("30/06/1998")
