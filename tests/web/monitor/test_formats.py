"""How the /sidekiq pages say times and numbers: spans in words, compact axis labels."""

from __future__ import annotations

import pytest

from sidekiq_supervisor.web.charts import bar_chart, compact_number
from sidekiq_supervisor.web.monitor.rendering import relative

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("offset", "said"),
    [
        (-0.4, "just now"),
        (-30, "30 s ago"),
        (-7200, "2 h 00 min ago"),
        (-86_399, "23 h 59 min ago"),
        (-86_400 * 3, "3 days ago"),
        (-86_400 * 28, "4 weeks ago"),
        (86_400 * 14, "in 2 weeks"),
        (86_400 * 45, "in 1 month"),
        (-86_400 * 800, "2 years ago"),
    ],
)
def test_a_span_of_a_day_or_more_is_said_in_words(offset, said):
    assert relative(NOW + offset, NOW) == said


@pytest.mark.parametrize(
    ("value", "label"),
    [(0, "0"), (0.5, "0.5"), (750, "750"), (1000, "1k"), (2500, "2.5k"), (10_000, "10k"), (2_000_000, "2M")],
)
def test_axis_labels_are_compact(value, label):
    assert compact_number(value) == label


def test_a_chart_of_tens_of_thousands_labels_its_axis_10k_not_1e4():
    svg = str(bar_chart("runs", [("20ms", 9_000), ("30ms", 100)]))
    assert ">10k<" in svg and ">5k<" in svg and "e+" not in svg
