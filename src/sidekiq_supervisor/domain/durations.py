"""Duration maths for the seed's two questions: queued→complete and started→complete.

Percentiles use the nearest-rank definition (the value at rank ⌈p·n⌉ of the sorted list), so
every reported percentile is a duration some job really had. The store computes the same ranks in
SQL; :func:`summarize` is the in-memory twin used on small lists and in tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sidekiq_supervisor.domain.model import Micros, Timeline

PERCENTILES = (0.50, 0.95, 0.99)


class DurationOrigin(StrEnum):
    """Where a duration starts; it always ends at the job's completion."""

    QUEUED = "queued"
    STARTED = "started"


@dataclass(frozen=True, slots=True)
class DurationSummary:
    """Count, mean, nearest-rank percentiles and maximum of a set of durations."""

    count: int
    mean: timedelta | None
    p50: timedelta | None
    p95: timedelta | None
    p99: timedelta | None
    max: timedelta | None

    @classmethod
    def empty(cls) -> DurationSummary:
        """The summary of no durations at all."""
        return cls(0, None, None, None, None, None)

    @classmethod
    def from_micros(
        cls, count: int, mean: float, p50: Micros, p95: Micros, p99: Micros, longest: Micros
    ) -> DurationSummary:
        """A summary from figures in microseconds."""
        return cls(
            count=count,
            mean=timedelta(microseconds=mean),
            p50=timedelta(microseconds=p50),
            p95=timedelta(microseconds=p95),
            p99=timedelta(microseconds=p99),
            max=timedelta(microseconds=longest),
        )


def duration_of(timeline: Timeline, origin: DurationOrigin) -> Micros | None:
    """Microseconds from ``origin`` to completion, or ``None`` when either end is unknown."""
    begin = timeline.queued_at if origin is DurationOrigin.QUEUED else timeline.started_at
    if begin is None or timeline.completed_at is None:
        return None
    return timeline.completed_at - begin


def nearest_rank(fraction: float, count: int) -> int:
    """The 1-based rank of the ``fraction`` percentile among ``count`` sorted values."""
    if count <= 0:
        raise ValueError("a percentile of no values is undefined")
    # The epsilon keeps float error (0.07 * 100 == 7.000000000000001) from skipping a rank.
    return min(count, max(1, math.ceil(fraction * count - 1e-9)))


def summarize(sorted_micros: Sequence[Micros]) -> DurationSummary:
    """Summarise durations already sorted ascending."""
    count = len(sorted_micros)
    if count == 0:
        return DurationSummary.empty()
    p50, p95, p99 = (sorted_micros[nearest_rank(p, count) - 1] for p in PERCENTILES)
    return DurationSummary.from_micros(count, sum(sorted_micros) / count, p50, p95, p99, sorted_micros[-1])
