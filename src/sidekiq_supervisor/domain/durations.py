"""Duration maths for the seed's two questions: queued→complete and started→complete.

Percentiles use the nearest-rank definition (the value at rank ⌈p·n⌉ of the sorted list), so
every reported percentile is a duration some job really had. The store computes the same ranks in
SQL; :func:`summarize` is the in-memory twin used on small lists and in tests.

Over a ledger too large to summarise in time, a summary may come from a sample of the jobs
(:func:`rows_to_hold` sizes a larger one, :func:`estimate_from_sample` scales it up); such a
summary is marked ``estimated``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
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
    """Count, mean, nearest-rank percentiles and maximum of a set of durations.

    ``estimated`` marks a summary computed from a sample: its count is scaled up from the
    sample, its mean and percentiles are the sample's, and its maximum is the sample's longest
    duration (never above the true maximum). ``percentiles_estimated`` marks one read from
    histograms (``domain.histogram``): count and mean exact, each percentile its bucket's upper
    bound.
    """

    count: int
    mean: timedelta | None
    p50: timedelta | None
    p95: timedelta | None
    p99: timedelta | None
    max: timedelta | None
    estimated: bool = False
    percentiles_estimated: bool = False

    @classmethod
    def empty(cls) -> DurationSummary:
        """The summary of no durations at all."""
        return cls(0, None, None, None, None, None)

    @classmethod
    def from_micros(
        cls,
        count: int,
        mean: float,
        p50: Micros,
        p95: Micros,
        p99: Micros,
        longest: Micros,
        *,
        estimated: bool = False,
    ) -> DurationSummary:
        """A summary from figures in microseconds."""
        return cls(
            count=count,
            mean=timedelta(microseconds=mean),
            p50=timedelta(microseconds=p50),
            p95=timedelta(microseconds=p95),
            p99=timedelta(microseconds=p99),
            max=timedelta(microseconds=longest),
            estimated=estimated,
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


def percentiles(sorted_micros: Sequence[Micros]) -> tuple[Micros, Micros, Micros]:
    """The nearest-rank p50, p95 and p99 of durations already sorted ascending (at least one)."""
    count = len(sorted_micros)
    p50, p95, p99 = (sorted_micros[nearest_rank(p, count) - 1] for p in PERCENTILES)
    return p50, p95, p99


def summarize(sorted_micros: Sequence[Micros]) -> DurationSummary:
    """Summarise durations already sorted ascending."""
    count = len(sorted_micros)
    if count == 0:
        return DurationSummary.empty()
    p50, p95, p99 = percentiles(sorted_micros)
    return DurationSummary.from_micros(count, sum(sorted_micros) / count, p50, p95, p99, sorted_micros[-1])


def rows_to_hold(wanted: int, matching: int, rows_read: int) -> int:
    """How many rows a sample should read to hold about ``wanted`` matching rows, when one of
    ``rows_read`` rows held ``matching``: a tenth more than their share says, so that the new
    sample is not short by chance."""
    if matching <= 0:
        raise ValueError("a share of no matching rows sizes no sample")
    return -(-rows_read * wanted * 11 // (matching * 10))


def estimate_from_sample(sample: DurationSummary, sampled_rows: int, table_rows: int) -> DurationSummary:
    """The summary of the whole table estimated from ``sample``, the exact summary of the
    matching durations among ``sampled_rows`` rows drawn at random from ``table_rows`` rows.

    The count scales by the share of the table sampled; the mean, the percentiles and the
    maximum are the sample's own. ``table_rows`` may be a statistic older than the sample, so
    the table is never taken to be smaller than what the sample read.
    """
    if sample.count == 0 or sampled_rows <= 0:
        return replace(DurationSummary.empty(), estimated=True)
    population = max(table_rows, sampled_rows)
    count = max(sample.count, round(sample.count * population / sampled_rows))
    return replace(sample, count=count, estimated=True)


def format_duration(value: timedelta | float | None) -> str:
    """A duration for people, the same on pages, in the CLI and in the console: ``850 ms``,
    ``4.2 s``, ``3 min 05 s``, ``2 h 07 min``; ``—`` when unknown. Plain numbers are microseconds
    (the ledger's unit)."""
    if value is None:
        return "—"
    micros = value / timedelta(microseconds=1) if isinstance(value, timedelta) else float(value)
    sign, micros = ("−", -micros) if micros < 0 else ("", micros)
    seconds = micros / 1_000_000
    if seconds < 1:
        text = f"{micros / 1000:.3g} ms" if micros >= 1000 else f"{micros:.0f} µs"
    elif seconds < 60:
        text = f"{seconds:.3g} s"
    elif seconds < 3600:
        text = f"{int(seconds // 60)} min {int(seconds % 60):02d} s"
    else:
        text = f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"
    return sign + text
