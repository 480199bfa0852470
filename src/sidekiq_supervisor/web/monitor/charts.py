"""The dashboard's history chart: processed and failed per day, drawn like ``web.charts``'s charts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta

from markupsafe import Markup

from sidekiq_supervisor.services.sidekiq_monitor import DailyStat
from sidekiq_supervisor.web import charts

# The realtime chart keeps this many polls (drawn by monitor.js on the same grid).
REALTIME_POINTS = 60


def history_chart(days: Sequence[DailyStat]) -> Markup:
    """One line per series over the days, oldest on the left, with date labels under the axis."""
    ordered = list(reversed(days))  # the service gives today first
    series = {
        "processed": [day.processed for day in ordered],
        "failed": [day.failed for day in ordered],
    }
    start = datetime.combine(ordered[0].day, time()) if ordered else datetime.now()
    title = f"Processed and failed per day, last {len(ordered)} days"
    return charts.line_chart(title, start, series, timedelta(days=1), label_format="%b %d")


def realtime_frame() -> Markup:
    """The empty realtime chart that monitor.js fills: a grid with axis labels it rewrites."""
    plot_width = charts.WIDTH - charts.LEFT - charts.RIGHT
    plot_height = charts.HEIGHT - charts.TOP - charts.BOTTOM
    body = charts._grid(1, plot_width, plot_height)
    body += [
        '<polyline class="line series-processed" fill="none" points="" data-series="processed"/>',
        '<polyline class="line series-failed" fill="none" points="" data-series="failed"/>',
    ]
    svg = str(charts._svg("Processed and failed per poll", body))  # str: Markup.replace would escape
    # The grid's labels become targets: the script sets their text to the scale it draws at.
    return Markup(  # built here from numbers and the escaped SVG above
        svg.replace('text-anchor="end">', 'text-anchor="end" data-axis="">', 3).replace(
            '<svg class="chart"',
            f'<svg class="chart" id="realtime-chart" data-points="{REALTIME_POINTS}" '
            f'data-left="{charts.LEFT}" data-top="{charts.TOP}" data-width="{plot_width}" '
            f'data-height="{plot_height}"',
            1,
        )
    )
