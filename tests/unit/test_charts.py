"""The customer page's SVG charts (readapi/charts.py) and the monthly series behind them."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from projections.postgres.monthly import (
    MonthlyActivity,
    MonthlyPurchases,
    MonthlyTouchpoints,
    month_range,
)
from readapi import charts

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    """The chart as XML (a stacked chart's HTML legend after it is dropped)."""
    return ET.fromstring(svg[: svg.index("</svg>") + len("</svg>")])


def test_bar_chart_is_labelled_and_draws_one_bar_per_period() -> None:
    root = parse(charts.bar_chart("Purchases per month", ["2025-01", "2025-02"], [3, 6]))
    assert root.get("role") == "img" and root.get("aria-label") == "Purchases per month"
    assert root.find(f"{SVG}title").text == "Purchases per month"  # type: ignore[union-attr]
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 2
    heights = [float(b.get("height", "0")) for b in bars]
    assert 0 < heights[0] < heights[1]
    assert heights[1] / heights[0] == pytest.approx(2, rel=0.01)
    assert [b.find(f"{SVG}title").text for b in bars] == ["2025-01: 3", "2025-02: 6"]  # type: ignore[union-attr]


def test_line_chart_draws_a_path_through_every_point_even_below_zero() -> None:
    root = parse(charts.line_chart("Value", ["a", "b", "c"], [10.0, -5.0, 2.5], " EUR"))
    path = root.find(f"{SVG}path")
    assert path is not None
    points = re.findall(r"[ML]([\d.]+),([\d.]+)", path.get("d", ""))
    assert len(points) == 3
    ys = [float(y) for _, y in points]
    assert ys[1] > ys[2] > ys[0]  # SVG's y grows downwards: -5 lowest, 10 highest
    titles = [c.find(f"{SVG}title").text for c in root.findall(f"{SVG}circle")]  # type: ignore[union-attr]
    assert titles == ["a: 10 EUR", "b: -5 EUR", "c: 2.50 EUR"]


def test_stacked_chart_stacks_series_and_has_a_legend() -> None:
    svg = charts.stacked_bar_chart(
        "By channel", ["m1", "m2"], {"email": [1, 0], "call_center": [3, 2]}
    )
    root = parse(svg)
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 3  # a zero draws nothing
    first_month = [b for b in bars if b.find(f"{SVG}title").text.startswith("m1")]  # type: ignore[union-attr]
    assert sum(float(b.get("height", "0")) for b in first_month) == pytest.approx(
        charts.Plot().height * 4 / charts.nice_top(4), rel=0.01
    )
    assert '<ul class="legend">' in svg and "call_center</li>" in svg


def test_text_is_escaped() -> None:
    svg = charts.bar_chart('<script>"x"</script>', ["<b>"], [1])
    assert "<script>" not in svg and "<b>" not in svg
    parse(svg)  # still well-formed


def test_nothing_to_show() -> None:
    for svg in (
        charts.bar_chart("Empty", [], []),
        charts.line_chart("Empty", [], []),
        charts.stacked_bar_chart("Empty", [], {}),
    ):
        root = parse(svg)
        assert root.get("role") == "img" and "nothing to show" in root.get("aria-label", "")


def test_mismatched_series_are_refused() -> None:
    with pytest.raises(ValueError, match="2 periods but 1 values"):
        charts.bar_chart("x", ["a", "b"], [1])
    with pytest.raises(ValueError, match="series 'email'"):
        charts.stacked_bar_chart("x", ["a"], {"email": [1, 2]})


@given(st.floats(min_value=1e-6, max_value=1e12, allow_nan=False))
def test_nice_top_is_at_least_the_value_and_a_round_number(value: float) -> None:
    top = charts.nice_top(value)
    assert top >= value * (1 - 1e-9)
    assert top < value * 10 + 1e-12
    mantissa = f"{top:.6e}".split("e")[0]
    assert float(mantissa) in (1.0, 2.0, 5.0, 10.0)


@given(st.floats(min_value=0, max_value=1e300))
@example(5e-324)  # subnormal: its power of ten underflows to 0.0
def test_nice_top_is_a_positive_axis_for_any_value_from_zero(value: float) -> None:
    top = charts.nice_top(value)
    assert 0 < top < math.inf and top >= value


@given(st.lists(st.floats(min_value=0, max_value=1e9), min_size=1, max_size=60))
@example([5e-324])
def test_bars_stay_inside_the_chart(values: list[float]) -> None:
    root = parse(charts.bar_chart("x", [str(i) for i in range(len(values))], values))
    for bar in root.findall(f"{SVG}rect"):
        y, height = float(bar.get("y", "0")), float(bar.get("height", "0"))
        assert y >= 0 and height >= 0 and y + height <= charts.HEIGHT


def test_monthly_series_fill_gaps_and_pick_the_main_currency() -> None:
    jan, mar = date(2025, 1, 1), date(2025, 3, 1)
    activity = MonthlyActivity(
        touchpoints=[
            MonthlyTouchpoints(jan, "email", "email.sent", 2),
            MonthlyTouchpoints(jan, "email", "email.opened", 1),
            MonthlyTouchpoints(mar, "call_center", "call_center.call", 4),
        ],
        purchases=[
            MonthlyPurchases(jan, "EUR", 2, 0, Decimal("30.00")),
            MonthlyPurchases(mar, "EUR", 1, 1, Decimal("5.00")),
            MonthlyPurchases(mar, "USD", 1, 0, Decimal("99.00")),
        ],
    )
    assert activity.months() == [jan, date(2025, 2, 1), mar]
    assert activity.by_channel() == {"call_center": [0, 0, 4], "email": [3, 0, 0]}
    assert activity.types() == ["call_center.call", "email.opened", "email.sent"]
    assert activity.main_currency() == "EUR"
    assert activity.purchase_series("EUR") == ([2, 0, 1], [Decimal(30), Decimal(0), Decimal(5)])
    assert (
        MonthlyActivity([], []).months() == [] and MonthlyActivity([], []).main_currency() is None
    )


def test_month_range_crosses_years() -> None:
    assert month_range(date(2024, 11, 15), date(2025, 2, 1)) == [
        date(2024, 11, 1),
        date(2024, 12, 1),
        date(2025, 1, 1),
        date(2025, 2, 1),
    ]
