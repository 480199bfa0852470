"""Duration histograms, in the house's two bucket schemes, each for what it serves.

- **Kept** (roll-ups): what retention keeps of jobs once it has deleted their rows. Buckets grow
  geometrically, four per doubling, so a bucket's upper bound is at most 19% above any duration
  in it, from a microsecond to years, in a few dozen buckets. Histograms add up (per class and
  hour, then over any range), and percentiles read from them are estimates: the upper bound of
  the bucket that holds the nearest rank, never below the true value.
- **Shown** (the Durations chart, and any histogram a person reads off an axis): 1-2-5 steps
  from 1 ms to a day, ``DISPLAY_EDGES``, so every edge is a round number ("<200ms", "<5s").
  Too coarse to estimate percentiles from (up to 2.5x per bin), which is why roll-ups keep
  the finer scheme; a kept bucket maps into the shown bin that holds its upper bound.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import timedelta

from sidekiq_supervisor.domain.durations import PERCENTILES, DurationSummary, nearest_rank
from sidekiq_supervisor.domain.model import Micros

BUCKETS_PER_DOUBLING = 4

# The shown bins' upper edges (microseconds): 1-2-5 steps from 1 ms to 1 day; past the last, one
# open bin.
DISPLAY_EDGES: tuple[Micros, ...] = tuple(
    m * 10**e for e in range(3, 11) for m in (1, 2, 5) if m * 10**e <= 86_400_000_000
)

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
        return replace(DurationSummary.empty(), percentiles_estimated=True)
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
        percentiles_estimated=True,
    )


def display_bins(durations: Iterable[Micros]) -> list[tuple[Micros | None, int]]:
    """(upper edge, count) per shown bin (``DISPLAY_EDGES``; ``None``: the open last bin), with the
    empty bins at both ends trimmed so that a chart spends its width on data."""
    counts = [0] * (len(DISPLAY_EDGES) + 1)
    for micros in durations:
        counts[bisect.bisect_right(DISPLAY_EDGES, micros)] += 1
    return _trimmed(counts)


def display_bins_of(histogram: Mapping[int, int]) -> list[tuple[Micros | None, int]]:
    """``display_bins`` of a kept histogram: each kept bucket counts in the shown bin that holds
    its upper bound, so a bin may hold a few durations up to 19% below its lower edge."""
    counts = [0] * (len(DISPLAY_EDGES) + 1)
    for bucket, count in histogram.items():
        counts[bisect.bisect_right(DISPLAY_EDGES, upper_bound(bucket))] += count
    return _trimmed(counts)


def _trimmed(counts: list[int]) -> list[tuple[Micros | None, int]]:
    bins: list[tuple[Micros | None, int]] = list(zip((*DISPLAY_EDGES, None), counts, strict=True))
    filled = [i for i, (_, count) in enumerate(bins) if count]
    return bins[filled[0] : filled[-1] + 1] if filled else []
