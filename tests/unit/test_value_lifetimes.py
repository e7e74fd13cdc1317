"""The purchase summary against the real `lifetimes` (0.11.3, pinned in the test extras).

lifetimes is imported unconditionally: if it is missing the module fails to import and
these tests fail, never skip, because they are the proof of the compatibility promise.

Data: the CDNOW transaction log shipped in lifetimes' package data,
`lifetimes/datasets/CDNOW_master.txt` (23,570 customers, 69,659 purchases,
1997-01-01..1998-06-30; columns customer_id, date, number_of_cds, dollar_value), read
both ways from the same file. Dates are midnight UTC; spend is dollar_value.
"""

from __future__ import annotations

import csv
import importlib.resources
from collections import defaultdict
from datetime import UTC, date, datetime, time
from decimal import Decimal
from importlib.resources.abc import Traversable

import lifetimes  # noqa: F401  (fail here, loudly, when the reference is missing)
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes.utils import summary_data_from_transaction_data

from projections.value import PeriodRule, Purchase, PurchaseSummary, summarize_purchases

DATASETS = importlib.resources.files("lifetimes") / "datasets"
CDNOW_MASTER = DATASETS / "CDNOW_master.txt"


def _cdnow_purchases(log: Traversable) -> dict[str, list[Purchase]]:
    by_customer: dict[str, list[Purchase]] = defaultdict(list)
    lines = log.read_text().splitlines()
    assert lines[0].split() == ["customer_id", "date", "number_of_cds", "dollar_value"]
    for line in lines[1:]:
        customer, yyyymmdd, _cds, dollars = line.split()
        on = datetime.strptime(yyyymmdd, "%Y%m%d").replace(tzinfo=UTC)
        by_customer[customer].append(Purchase(on, Decimal(dollars), "USD"))
    return by_customer


def _cdnow_frame(log: Traversable) -> pd.DataFrame:
    with log.open() as text:
        frame = pd.read_csv(text, sep=r"\s+", dtype={"customer_id": str, "date": str})
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


def _ours(
    by_customer: dict[str, list[Purchase]], as_of: datetime, period: PeriodRule
) -> pd.DataFrame:
    rows = {}
    for customer, history in by_customer.items():
        summary = summarize_purchases(history, as_of=as_of, period=period)
        if summary is not None:
            rows[customer] = summary.as_lifetimes_row()
    return pd.DataFrame.from_dict(rows, orient="index")


def _assert_same(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    assert sorted(ours.index) == sorted(theirs.index), "different customers summarised"
    ours = ours.loc[theirs.index]
    for column in ("frequency", "recency", "T"):
        differ = ours[column] != theirs[column]
        assert not differ.any(), f"{column} differs for {list(theirs.index[differ][:5])}"
    gap = (ours["monetary_value"] - theirs["monetary_value"]).abs()
    assert gap.max() <= 1e-9, f"monetary_value differs by {gap.max()} for {gap.idxmax()}"


@pytest.fixture(scope="module")
def cdnow() -> tuple[dict[str, list[Purchase]], pd.DataFrame]:
    return _cdnow_purchases(CDNOW_MASTER), _cdnow_frame(CDNOW_MASTER)


# 1997-09-30 is the classic calibration end (39 weeks; Fader, Hardie & Lee) and cuts
# purchases off; 1998-06-30 is the last day of the log. as_of is the last instant of the
# period holding that day (lifetimes keeps the whole period): for days, any instant of
# the day gives the same result on this date-only log; for weeks it is Sunday 1997-10-05.
@pytest.mark.parametrize(
    ("observation_period_end", "freq", "period_days"),
    [("1997-09-30", "D", 1), ("1998-06-30", "D", 1), ("1997-09-30", "W", 7)],
)
def test_cdnow_summary_matches_lifetimes_for_every_customer(
    cdnow: tuple[dict[str, list[Purchase]], pd.DataFrame],
    observation_period_end: str,
    freq: str,
    period_days: int,
) -> None:
    by_customer, frame = cdnow
    theirs = summary_data_from_transaction_data(
        frame,
        "customer_id",
        "date",
        monetary_value_col="dollar_value",
        observation_period_end=observation_period_end,
        freq=freq,
    )
    period = PeriodRule(days=period_days)
    end = datetime.fromisoformat(observation_period_end).replace(tzinfo=UTC)
    ours = _ours(by_customer, period.last_instant(end), period)
    assert len(theirs) == 23_570
    _assert_same(ours, theirs)


def test_cdnow_sample_matches_the_published_fader_hardie_summary() -> None:
    # An independent check of the conventions (and of lifetimes on today's pandas): the
    # summary of the 1/10 CDNOW sample at 1997-09-30 that lifetimes ships, in weeks to 2
    # decimals, as published by Fader & Hardie. IDs are the sample's second column.
    by_sample_id: dict[int, list[Purchase]] = defaultdict(list)
    for line in (DATASETS / "CDNOW_sample.txt").read_text().splitlines():
        _master_id, sample_id, yyyymmdd, _cds, dollars = line.split()
        on = datetime.strptime(yyyymmdd, "%Y%m%d").replace(tzinfo=UTC)
        by_sample_id[int(sample_id)].append(Purchase(on, Decimal(dollars), "USD"))
    published = (DATASETS / "cdnow_customers_summary_with_transactions.csv").read_text()
    rows = list(csv.DictReader(published.splitlines()))
    assert len(rows) == 2357
    as_of = datetime(1997, 9, 30, tzinfo=UTC)
    for row in rows:
        summary = summarize_purchases(by_sample_id[int(row["ID"])], as_of=as_of)
        assert isinstance(summary, PurchaseSummary)
        assert summary.frequency == int(row["x"])
        assert round(summary.recency / 7, 2) == float(row["t_x"])
        assert round(summary.age / 7, 2) == float(row["T"])
        # Published half-up to cents; our mean is exact before it becomes a float.
        assert abs(summary.monetary_value - float(row["zbar"])) <= 0.005 + 1e-9


# Random logs with intraday times: lifetimes keeps everything in the period of its
# observation_period_end, which our as_of reproduces at the last instant of that period.
_logs = st.dictionaries(
    st.sampled_from(["a", "b", "c", "d"]),
    st.lists(
        st.tuples(
            st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2023, 3, 31)),
            st.decimals(min_value=0, max_value=1000, places=2),
        ),
        min_size=1,
        max_size=12,
    ),
    min_size=1,
)


@settings(max_examples=40, deadline=None)
@given(
    _logs,
    st.dates(min_value=date(2023, 1, 1), max_value=date(2023, 4, 30)),
    st.sampled_from([("D", 1), ("W", 7)]),
)
def test_random_logs_match_lifetimes(
    log: dict[str, list[tuple[datetime, Decimal]]], end: date, period: tuple[str, int]
) -> None:
    freq, period_days = period
    rows = [(c, at, float(amount)) for c, buys in log.items() for at, amount in buys]
    frame = pd.DataFrame(rows, columns=["customer", "at", "spend"])
    if frame["at"].min().date() > end:
        return  # lifetimes cannot summarise an empty window; ours says None for everyone
    theirs = summary_data_from_transaction_data(
        frame, "customer", "at", "spend", observation_period_end=end.isoformat(), freq=freq
    )
    by_customer = {
        c: [Purchase(at.replace(tzinfo=UTC), amount, "USD") for at, amount in buys]
        for c, buys in log.items()
    }
    rule = PeriodRule(days=period_days)
    as_of = rule.last_instant(datetime.combine(end, time(), UTC))
    _assert_same(_ours(by_customer, as_of, rule), theirs)
