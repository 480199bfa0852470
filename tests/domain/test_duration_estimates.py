"""Summaries estimated from a sample: how large a second sample to take, and how to scale one up."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from sidekiq_supervisor.domain.durations import (
    DurationSummary,
    estimate_from_sample,
    rows_to_hold,
    summarize,
)

SAMPLE = summarize([1_000, 2_000, 3_000, 4_000, 50_000])


def test_a_larger_sample_reads_what_the_share_found_says_and_a_tenth_more():
    assert rows_to_hold(1_000, 500, 15_000) == 33_000
    assert rows_to_hold(1_000, 999, 1_000) == 1_102  # rounded up
    assert rows_to_hold(200, 1, 10) == 2_200


def test_no_matching_rows_size_no_sample():
    with pytest.raises(ValueError, match="no matching rows"):
        rows_to_hold(1_000, 0, 15_000)


def test_an_estimate_scales_the_count_by_the_share_sampled_and_keeps_the_samples_figures():
    estimate = estimate_from_sample(SAMPLE, sampled_rows=100, table_rows=10_000)

    assert estimate.estimated is True
    assert estimate.count == 500
    assert replace(estimate, count=SAMPLE.count, estimated=False) == SAMPLE


def test_an_estimate_never_takes_the_table_for_smaller_than_the_sample():
    # Planner statistics older than the rows sampled.
    estimate = estimate_from_sample(SAMPLE, sampled_rows=100, table_rows=40)

    assert estimate.count == SAMPLE.count


def test_an_empty_sample_estimates_an_empty_summary_marked_as_an_estimate():
    estimate = estimate_from_sample(DurationSummary.empty(), sampled_rows=100, table_rows=10_000)

    assert estimate == replace(DurationSummary.empty(), estimated=True)


def test_a_summary_is_exact_unless_marked():
    assert SAMPLE.estimated is False
    assert DurationSummary.from_micros(1, 1.0, 1, 1, 1, 1).estimated is False
    marked = DurationSummary.from_micros(1, 1.0, 1, 1, 1, 2, estimated=True)
    assert (marked.estimated, marked.max) == (True, timedelta(microseconds=2))
