"""Duration maths: durations of one job, nearest-rank percentiles and summaries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sidekiq_supervisor.domain.durations import (
    DurationOrigin,
    DurationSummary,
    duration_of,
    nearest_rank,
    summarize,
)
from sidekiq_supervisor.domain.model import Timeline


def us(micros):
    return timedelta(microseconds=micros)


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        pytest.param(DurationOrigin.QUEUED, 2_500_000, id="queued-to-complete"),
        pytest.param(DurationOrigin.STARTED, 1_500_000, id="started-to-complete"),
    ],
)
def test_duration_of_measures_from_the_origin_to_completion(origin, expected):
    timeline = Timeline(queued_at=1_000_000, started_at=2_000_000, completed_at=3_500_000, attempts=1)
    assert duration_of(timeline, origin) == expected


@pytest.mark.parametrize("origin", list(DurationOrigin), ids=str)
def test_duration_of_is_none_for_a_job_not_yet_complete(origin):
    assert duration_of(Timeline(queued_at=1, started_at=2, attempts=1), origin) is None


def test_duration_of_from_queued_is_none_when_queued_is_unknown():
    timeline = Timeline(started_at=2, completed_at=5, attempts=1)
    assert duration_of(timeline, DurationOrigin.QUEUED) is None
    assert duration_of(timeline, DurationOrigin.STARTED) == 3


def test_duration_of_from_started_is_none_when_started_is_unknown():
    timeline = Timeline(queued_at=1, completed_at=5)
    assert duration_of(timeline, DurationOrigin.STARTED) is None
    assert duration_of(timeline, DurationOrigin.QUEUED) == 4


@pytest.mark.parametrize(
    ("fraction", "count", "rank"),
    [
        pytest.param(0.5, 1, 1, id="p50-of-1"),
        pytest.param(0.99, 1, 1, id="p99-of-1"),
        pytest.param(0.0, 1, 1, id="p0-of-1"),
        pytest.param(0.5, 2, 1, id="p50-of-2"),
        pytest.param(0.95, 20, 19, id="p95-of-20"),
        pytest.param(0.99, 100, 99, id="p99-of-100"),
        pytest.param(0.99, 101, 100, id="p99-of-101"),
        pytest.param(1.0, 7, 7, id="p100-of-7"),
    ],
)
def test_nearest_rank_is_the_ceiling_of_fraction_times_count_within_bounds(fraction, count, rank):
    assert nearest_rank(fraction, count) == rank


@pytest.mark.parametrize("count", [0, -1])
def test_nearest_rank_of_no_values_raises(count):
    with pytest.raises(ValueError, match="undefined"):
        nearest_rank(0.5, count)


def test_summarize_of_no_durations_is_the_empty_summary():
    assert summarize([]) == DurationSummary.empty()
    assert DurationSummary.empty() == DurationSummary(0, None, None, None, None, None)


def test_summarize_of_one_duration_reports_it_everywhere():
    assert summarize([42]) == DurationSummary(1, us(42), us(42), us(42), us(42), us(42))


def test_summarize_of_known_values():
    durations = list(range(1, 101))  # 1..100 µs
    summary = summarize(durations)
    assert summary == DurationSummary(
        count=100, mean=us(50.5), p50=us(50), p95=us(95), p99=us(99), max=us(100)
    )


def test_summarize_of_101_values_takes_p99_at_rank_100():
    summary = summarize(list(range(10, 1020, 10)))  # 101 values: 10, 20, ..., 1010
    assert summary.count == 101
    assert (summary.p50, summary.p95, summary.p99, summary.max) == (us(510), us(960), us(1000), us(1010))


durations = st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=200).map(sorted)


@given(durations)
def test_summary_percentiles_are_ordered_and_bounded_by_the_maximum(values):
    summary = summarize(values)
    assert summary.p50 <= summary.p95 <= summary.p99 <= summary.max
    assert summary.max == us(values[-1])
    assert summary.count == len(values)


@given(durations)
def test_every_summary_percentile_is_a_duration_some_job_really_had(values):
    summary = summarize(values)
    members = {us(value) for value in values}
    assert {summary.p50, summary.p95, summary.p99, summary.max} <= members


@given(durations)
def test_summary_mean_lies_between_the_minimum_and_the_maximum(values):
    summary = summarize(values)
    assert us(values[0]) <= summary.mean <= us(values[-1])


def test_nearest_rank_is_not_pushed_up_by_float_error():
    assert nearest_rank(0.07, 100) == 7
