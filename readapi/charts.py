"""Small SVG charts drawn on the server for the customer page. Pure: series in, text out.

Each chart is one `<svg role="img">` whose aria-label says what it shows, with a `<title>`
on the chart and on every bar or point (a tooltip for the mouse, a name for a screen
reader); the page puts the same figures in a table beside it. Every text is escaped here,
so a caller may insert the result into HTML as it is.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 560
HEIGHT = 180
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 8, 10, 28  # margins: room for the axis labels

# Distinguishable in colour-blind palettes (Okabe-Ito), cycled for more series.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000")


@dataclass(frozen=True)
class Plot:
    """The drawing area inside the margins."""

    width: float = WIDTH - _LEFT - _RIGHT
    height: float = HEIGHT - _TOP - _BOTTOM

    def y(self, value: float, top: float) -> float:
        """The y coordinate of `value` on an axis from 0 to `top`."""
        return _TOP + self.height - (value / top * self.height if top else 0.0)


def nice_top(value: float) -> float:
    """The axis maximum: `value` rounded up to 1, 2 or 5 times a power of ten (0 → 1)."""
    if value <= 0:
        return 1.0
    # Clamped so a subnormal value's power of ten does not underflow to 0.0.
    magnitude = 10.0 ** max(math.floor(math.log10(value)), -300)
    return next(
        (s * magnitude for s in (1, 2, 5, 10) if value <= s * magnitude * (1 + 1e-12)), value
    )


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:,.2f}"


def _frame(label: str, body: list[str], top: float, bottom: float = 0.0) -> str:
    plot = Plot()
    axis_y = plot.y(0, top) if bottom == 0 else _TOP + plot.height
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" aria-label="{escape(label)}">',
        f"<title>{escape(label)}</title>",
        f'<text class="axis" x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end">'
        f"{escape(_number(top))}</text>",
        f'<text class="axis" x="{_LEFT - 4}" y="{axis_y:.1f}" text-anchor="end">'
        f"{escape(_number(bottom))}</text>",
        f'<line class="baseline" x1="{_LEFT}" y1="{axis_y:.1f}" '
        f'x2="{WIDTH - _RIGHT}" y2="{axis_y:.1f}"/>',
        *body,
        "</svg>",
    ]
    return "".join(parts)


def _period_labels(periods: Sequence[str], slot: float) -> list[str]:
    """Labels under the x axis, thinned so they do not overlap (about 7 characters each)."""
    every = max(1, int(56 // max(slot, 1)) + (1 if slot < 56 else 0))
    return [
        f'<text class="axis" x="{_LEFT + slot * (i + 0.5):.1f}" y="{HEIGHT - 8}" '
        f'text-anchor="middle">{escape(p)}</text>'
        for i, p in enumerate(periods)
        if i % every == 0
    ]


def _bar(slot_index: int, slot: float, y_top: float, y_base: float, colour: int, title: str) -> str:
    """One bar (or one segment of a stacked bar) in its period's slot, with a tooltip."""
    return (
        f'<rect class="bar" x="{_LEFT + slot * slot_index + slot * 0.1:.1f}" y="{y_top:.1f}" '
        f'width="{slot * 0.8:.1f}" height="{y_base - y_top:.1f}" '
        f'fill="{PALETTE[colour % len(PALETTE)]}"><title>{escape(title)}</title></rect>'
    )


def bar_chart(label: str, periods: Sequence[str], values: Sequence[float], unit: str = "") -> str:
    """One bar per period (e.g. purchases per month)."""
    if len(periods) != len(values):
        raise ValueError(f"{len(periods)} periods but {len(values)} values")
    if not periods:
        return empty_chart(label)
    plot = Plot()
    top = nice_top(max(values))
    slot = plot.width / len(periods)
    body = []
    for i, (period, value) in enumerate(zip(periods, values, strict=True)):
        title = f"{period}: {_number(value)}{unit}"
        body.append(_bar(i, slot, plot.y(max(value, 0.0), top), plot.y(0, top), 0, title))
    return _frame(label, body + _period_labels(periods, slot), top)


def line_chart(label: str, periods: Sequence[str], values: Sequence[float], unit: str = "") -> str:
    """A line through one point per period (e.g. value per month); negative values are
    drawn below the baseline."""
    if len(periods) != len(values):
        raise ValueError(f"{len(periods)} periods but {len(values)} values")
    if not periods:
        return empty_chart(label)
    plot = Plot()
    low = min(0.0, min(values))
    top = nice_top(max(values) - low)
    slot = plot.width / len(periods)
    points = [(_LEFT + slot * (i + 0.5), plot.y(v - low, top)) for i, v in enumerate(values)]
    path = "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in points)
    body = [f'<path class="line" d="{path}" fill="none" stroke="{PALETTE[0]}" stroke-width="2"/>']
    for (x, y), period, value in zip(points, periods, values, strict=True):
        body.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{PALETTE[0]}">'
            f"<title>{escape(period)}: {escape(_number(value))}{escape(unit)}</title></circle>"
        )
    return _frame(label, body + _period_labels(periods, slot), top + low, bottom=low)


def stacked_bar_chart(
    label: str, periods: Sequence[str], series: Mapping[str, Sequence[float]]
) -> str:
    """One bar per period, stacked by series (e.g. touchpoints per month by channel), with a
    legend. Series are drawn in the mapping's order, each in its own colour."""
    for name, values in series.items():
        if len(values) != len(periods):
            raise ValueError(f"series {name!r} has {len(values)} values for {len(periods)} periods")
    if not periods or not series:
        return empty_chart(label)
    plot = Plot()
    totals = [sum(max(v[i], 0.0) for v in series.values()) for i in range(len(periods))]
    top = nice_top(max(totals))
    slot = plot.width / len(periods)
    body = []
    for i, period in enumerate(periods):
        base = 0.0
        for n, (name, values) in enumerate(series.items()):
            value = max(values[i], 0.0)
            if not value:
                continue
            title = f"{period}, {name}: {_number(value)}"
            body.append(_bar(i, slot, plot.y(base + value, top), plot.y(base, top), n, title))
            base += value
    return _frame(label, body + _period_labels(periods, slot), top) + legend(list(series))


def legend(names: Sequence[str]) -> str:
    """The colour key of a stacked chart, as HTML (text a screen reader can read)."""
    items = "".join(
        f'<li><span class="swatch" style="background:{PALETTE[n % len(PALETTE)]}" '
        f'aria-hidden="true"></span>{escape(name)}</li>'
        for n, name in enumerate(names)
    )
    return f'<ul class="legend">{items}</ul>'


def empty_chart(label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart empty" role="img" '
        f'viewBox="0 0 {WIDTH} 40" aria-label="{escape(label)}: nothing to show">'
        f"<title>{escape(label)}: nothing to show</title>"
        f'<text x="{WIDTH / 2}" y="24" text-anchor="middle">Nothing to show</text></svg>'
    )
