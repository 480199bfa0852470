"""Roll-up histograms: buckets, merging, and percentile estimates that never undershoot."""

from __future__ import annotations

import random
from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from sidekiq_supervisor.domain.durations import summarize
from sidekiq_supervisor.domain.histogram import (
    DISPLAY_EDGES,
    bucket_of,
    display_bins,
    estimate_summary,
    histogram_of,
    merged,
    upper_bound,
)


@given(st.integers(min_value=2, max_value=10**13))
def test_a_duration_lies_within_19_percent_below_its_bucket_upper_bound(micros):
    bound = upper_bound(bucket_of(micros))
    assert micros <= bound <= micros * 1.19 + 1


def test_tiny_and_negative_durations_share_the_first_bucket():
    assert bucket_of(-5_000) == bucket_of(0) == bucket_of(1) == 0


@given(st.lists(st.integers(min_value=0, max_value=10**10), min_size=1, max_size=300))
def test_estimates_bound_the_exact_percentiles_from_above_and_count_mean_max_are_exact(durations):
    exact = summarize(sorted(durations))
    estimate = estimate_summary(histogram_of(durations), sum(durations), max(durations))

    assert (estimate.count, estimate.mean, estimate.max) == (exact.count, exact.mean, exact.max)
    for name in ("p50", "p95", "p99"):
        true, guess = getattr(exact, name), getattr(estimate, name)
        assert true <= guess <= max(true * 1.19, true + timedelta(microseconds=1))


def test_histograms_add_up_so_hours_merge_into_any_range():
    first, second = [random.randrange(10**7) for _ in range(50)], [random.randrange(10**7) for _ in range(70)]

    assert merged(histogram_of(first), histogram_of(second)) == histogram_of(first + second)
    assert estimate_summary({}, 0, 0).count == 0


def test_shown_bins_have_round_edges_hold_each_duration_below_its_edge_and_trim_empty_ends():
    # 0.9 ms and 1 ms straddle the first edge; a day and more fall in the open last bin.
    bins = display_bins([900, 1_000, 1_500, 4_999, 86_400_000_000, 10**12])
    edges = [edge for edge, _ in bins]
    assert edges[:4] == [1_000, 2_000, 5_000, 10_000] and edges[-1] is None
    assert dict(bins[:3]) == {1_000: 1, 2_000: 2, 5_000: 1} and bins[-1] == (None, 2)
    assert sum(count for _, count in bins) == 6
    assert display_bins([]) == [] and display_bins([3_000_000]) == [(5_000_000, 1)]
    assert all(str(edge).lstrip("125").strip("0") == "" for edge in DISPLAY_EDGES)
