"""Server-side SVG charts: a line chart of events per minute and a bar histogram of durations.

Charts are drawn with presentation attributes and CSS classes only (the Content-Security-Policy
allows no inline ``style``); colours come from the stylesheet, so they follow the theme. Every
text that goes into the SVG passes through ``escape``, and the result is returned as ``Markup``
because it is markup this module built, not data.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 28


def compact_number(value: float) -> str:
    """An axis label: ``750``, ``2.5k``, ``10k``, ``1.2M`` (never ``1e+04``)."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.1f}".removesuffix(".0") + suffix
    return f"{value:.2f}".rstrip("0").rstrip(".") if value % 1 else f"{value:.0f}"


def _nice_ceiling(value: float) -> int:
    """The smallest 1-2-5 step number at or above ``value`` (at least 1), for a tidy axis."""
    step = 1
    while True:
        for multiple in (1, 2, 5):
            if step * multiple >= value:
                return step * multiple
        step *= 10


def _grid(top_value: int, plot_width: int, plot_height: int) -> list[str]:
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_height * (1 - fraction)
        label = escape(compact_number(top_value * fraction))
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{LEFT + plot_width}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    return parts


def _svg(title: str, body: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def line_chart(
    title: str,
    start: datetime,
    series: Mapping[str, Sequence[int]],
    step: timedelta,
    label_format: str = "%H:%M",
) -> Markup:
    """One line per named series (CSS class ``series-<name>``) over time, from ``start`` by ``step``,
    with a few times under the axis written as ``label_format``."""
    points = max((len(values) for values in series.values()), default=0)
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = _nice_ceiling(max((max(values, default=0) for values in series.values()), default=0))
    body = _grid(top_value, plot_width, plot_height)
    x_of = (lambda i: LEFT + plot_width * i / (points - 1)) if points > 1 else (lambda i: LEFT)
    for name, values in series.items():
        coords = " ".join(
            f"{x_of(i):.1f},{TOP + plot_height * (1 - v / top_value):.1f}" for i, v in enumerate(values)
        )
        body.append(f'<polyline class="line series-{escape(name)}" fill="none" points="{coords}"/>')
    for index in range(0, points, max(1, points // 6)):
        label = escape((start + step * index).strftime(label_format))
        body.append(
            f'<text class="axis" x="{x_of(index):.1f}" y="{HEIGHT - 8}" text-anchor="middle">{label}</text>'
        )
    return _svg(title, body)


def bar_chart(title: str, bars: Sequence[tuple[str, int]]) -> Markup:
    """Vertical bars with a label under each (a histogram when the labels are bin edges)."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top_value = _nice_ceiling(max((count for _, count in bars), default=0))
    body = _grid(top_value, plot_width, plot_height)
    slot = plot_width / max(1, len(bars))
    every = max(1, math.ceil(len(bars) / 7))
    for index, (label, count) in enumerate(bars):
        height = plot_height * count / top_value
        x = LEFT + slot * index
        body.append(
            f'<rect class="bar" x="{x + slot * 0.1:.1f}" y="{TOP + plot_height - height:.1f}" '
            f'width="{slot * 0.8:.1f}" height="{height:.1f}"><title>{escape(label)}: {count:,}</title></rect>'
        )
        if index % every == 0:
            body.append(
                f'<text class="axis" x="{x + slot / 2:.1f}" y="{HEIGHT - 8}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    return _svg(title, body)
