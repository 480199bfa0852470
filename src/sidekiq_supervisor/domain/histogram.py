"""Duration histograms: what roll-ups keep of jobs once retention has deleted their rows.

Buckets grow geometrically, four per doubling, so a bucket's upper bound is at most 19% above
any duration in it, from a microsecond to years, in a few dozen buckets. Histograms add up
(per class and hour, then over any range), and percentiles read from them are estimates: the
upper bound of the bucket that holds the nearest rank, never below the true value.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import timedelta

from sidekiq_supervisor.domain.durations import PERCENTILES, DurationSummary, nearest_rank
from sidekiq_supervisor.domain.model import Micros

BUCKETS_PER_DOUBLING = 4

Histogram = dict[int, int]


def bucket_of(micros: Micros) -> int:
    """The bucket of a duration; durations under 1 µs (clock skew included) share bucket 0."""
    if micros <= 1:
        return 0
    return math.ceil(math.log2(micros) * BUCKETS_PER_DOUBLING)


def upper_bound(bucket: int) -> Micros:
    """The largest duration bucket ``bucket`` holds, in microseconds."""
    return math.floor(2 ** (bucket / BUCKETS_PER_DOUBLING))


def histogram_of(durations: Iterable[Micros]) -> Histogram:
    """The histogram of some durations."""
    counts: Histogram = {}
    for micros in durations:
        bucket = bucket_of(micros)
        counts[bucket] = counts.get(bucket, 0) + 1
    return counts


def merged(*histograms: Mapping[int, int]) -> Histogram:
    """The sum of histograms."""
    total: Histogram = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            total[bucket] = total.get(bucket, 0) + count
    return total


def estimate_summary(histogram: Mapping[int, int], total_micros: int, longest: Micros) -> DurationSummary:
    """Count, exact mean and maximum, and percentiles estimated from the buckets."""
    count = sum(histogram.values())
    if count == 0:
        return DurationSummary.empty()
    ordered = sorted(histogram.items())

    def at_rank(rank: int) -> Micros:
        seen = 0
        for bucket, bucket_count in ordered:
            seen += bucket_count
            if seen >= rank:
                return min(upper_bound(bucket), longest)
        return longest

    p50, p95, p99 = (at_rank(nearest_rank(p, count)) for p in PERCENTILES)
    return DurationSummary(
        count=count,
        mean=timedelta(microseconds=total_micros / count),
        p50=timedelta(microseconds=p50),
        p95=timedelta(microseconds=p95),
        p99=timedelta(microseconds=p99),
        max=timedelta(microseconds=longest),
    )
