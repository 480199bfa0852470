"""What a completed job adds to the duration roll-ups, and how the roll-ups add up.

The roll-ups answer the duration questions of the pages, the API and the console at once, however
many jobs the ledger holds: per job class and queue, origin (queued or started, the seed's two
questions) and period of completion, the count, sum and maximum of the durations and their
histogram (``domain.histogram``). A class nearly always runs on one queue, so keying by both costs
the writer no more rows than keying by class: a summary of a class sums its queues, one of a queue
sums its classes. Each kept completed job counts in three periods: the hour and the day of its
completion, and ``all`` (every kept job of the class and queue). A job whose timeline changes
after it completed (a late report) moves: its old durations go out and its new ones in. When
retention deletes a job, its durations move from those three to ``pruned`` (every deleted job of
the class and queue), so each job counts once among the kept and once in all. Jobs deleted before
the roll-ups had queues (migration 0012) are kept under ``UNKNOWN_QUEUE``.

Counts, sums and means are exact; percentiles are estimated from the histogram (at most 19% above
the true value). A maximum only grows: a job taken out leaves it as it was, so the maximum of a
period is the longest duration it ever held (a period emptied entirely starts again).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple

from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary, duration_of
from sidekiq_supervisor.domain.histogram import Histogram, bucket_of, estimate_summary
from sidekiq_supervisor.domain.model import JobStatus, Micros, Timeline
from sidekiq_supervisor.domain.status import status_of

HOUR: Micros = 3_600_000_000
DAY: Micros = 24 * HOUR


class Grain(StrEnum):
    """The length of a roll-up's period."""

    HOUR = "hour"
    DAY = "day"
    ALL = "all"
    PRUNED = "pruned"


# The queue of the pruned roll-ups of jobs deleted before roll-ups were kept per queue (migration
# 0012): their queue is gone with their rows. No job has it: a reported queue is never empty.
UNKNOWN_QUEUE = ""

# Where a kept job counts; a deleted one counts in PRUNED alone.
KEPT_GRAINS = (Grain.HOUR, Grain.DAY, Grain.ALL)
GRAIN_MICROS: dict[Grain, Micros] = {Grain.HOUR: HOUR, Grain.DAY: DAY}


class RollupKey(NamedTuple):
    """One roll-up: the durations from ``origin`` of a class's jobs on a queue, completed in the
    period from ``start``. A named tuple (made, hashed and compared in C: the writer makes six per
    completed job); keys order by grain, start, class, queue and origin."""

    grain: Grain
    start: Micros
    job_class: str
    queue: str
    origin: DurationOrigin

    @property
    def text(self) -> str:
        """The key as one string (the table's primary key): grain, start, origin, class and queue.
        The class's length goes first, so that no class or queue name, whatever it holds, can
        make two keys one."""
        return (
            f"{self.grain.value}|{self.start}|{self.origin.value}|"
            f"{len(self.job_class)}|{self.job_class}|{self.queue}"
        )


@dataclass(slots=True)
class Tally:
    """Count, sum, maximum and histogram of some durations; counts may be negative in a change."""

    count: int = 0
    total: int = 0
    longest: Micros = 0
    histogram: Histogram = field(default_factory=dict)

    def add(self, micros: Micros, sign: int = 1, bucket: int | None = None) -> None:
        """Count ``micros`` in (``sign`` 1) or out (``sign`` -1); ``bucket`` is its histogram
        bucket, when the caller knows it already."""
        self.count += sign
        self.total += sign * micros
        if sign > 0 and micros > self.longest:
            self.longest = micros
        if bucket is None:
            bucket = bucket_of(micros)
        self.histogram[bucket] = self.histogram.get(bucket, 0) + sign

    def plus(self, change: Tally) -> Tally:
        """This tally with ``change`` applied (buckets that reach zero dropped)."""
        histogram = dict(self.histogram)
        for bucket, count in change.histogram.items():
            histogram[bucket] = histogram.get(bucket, 0) + count
        return Tally(
            self.count + change.count,
            self.total + change.total,
            max(self.longest, change.longest),
            {bucket: count for bucket, count in histogram.items() if count},
        )

    def is_empty(self) -> bool:
        """No durations at all (and no change, when this tally is a change: a job that moved
        within a period with the same duration changes nothing, not even the maximum)."""
        return self.count == 0 and self.total == 0 and not any(self.histogram.values())

    def summary(self) -> DurationSummary:
        """The summary: exact count and mean, estimated percentiles, the maximum (see the module)."""
        return estimate_summary(self.histogram, self.total, self.longest)


class Window(StrEnum):
    """The completion periods a page summarises: the current hour and the one before, the last 24
    hours, the last 7 days, or every kept job."""

    HOUR = "1h"
    DAY = "24h"
    WEEK = "7d"
    ALL = "all"


def window_periods(window: Window, now: Micros) -> tuple[Grain, Micros | None]:
    """The grain of roll-ups a window reads and the start of its first period (``None``: all)."""
    if window is Window.ALL:
        return Grain.ALL, None
    if window is Window.WEEK:
        return Grain.DAY, period_start(Grain.DAY, now) - 6 * DAY
    hours = 1 if window is Window.HOUR else 23
    return Grain.HOUR, period_start(Grain.HOUR, now) - hours * HOUR


def summed(tallies: Iterable[Tally]) -> Tally:
    """One tally of many (of several classes, or of a window's periods)."""
    total = Tally()
    for tally in tallies:
        total = total.plus(tally)
    return total


def period_start(grain: Grain, at: Micros) -> Micros:
    """The start of the period of ``grain`` that holds ``at`` (0 for ``all`` and ``pruned``)."""
    if grain not in GRAIN_MICROS:
        return 0
    width = GRAIN_MICROS[grain]
    return at // width * width


def contributions(
    job_class: str, queue: str, timeline: Timeline | None, grains: tuple[Grain, ...] = KEPT_GRAINS
) -> list[tuple[RollupKey, Micros]]:
    """Where a job of ``job_class`` on ``queue`` counts its durations: nowhere unless it is
    complete, else each known duration in each period of its completion, of each of ``grains``."""
    counted = _counted_durations(timeline)
    if counted is None:
        return []
    completed_at, durations = counted
    return [
        (RollupKey(grain, period_start(grain, completed_at), job_class, queue, origin), micros)
        for origin, micros in durations
        for grain in grains
    ]


def changes(
    jobs: Iterable[tuple[str, str, Timeline | None, Timeline | None]],
) -> dict[RollupKey, Tally]:
    """The changes to the roll-ups of jobs going from one timeline to another: ``(job_class,
    queue, before, after)``, ``None`` for a job not (or no longer) kept. Keys with no net change
    are left out."""
    found: dict[RollupKey, Tally] = {}
    for job_class, queue, before, after in jobs:
        out, into = _counted_durations(before), _counted_durations(after)
        if out == into:
            continue
        for sign, counted in ((-1, out), (1, into)):
            if counted is None:
                continue
            completed_at, durations = counted
            # The writer's hottest loop: six keys per completed job, each duration's bucket once.
            starts = [(grain, period_start(grain, completed_at)) for grain in KEPT_GRAINS]
            for origin, micros in durations:
                bucket = bucket_of(micros)
                for grain, start in starts:
                    key = RollupKey(grain, start, job_class, queue, origin)
                    tally = found.get(key)
                    if tally is None:
                        tally = found[key] = Tally()
                    tally.add(micros, sign, bucket)
    return {key: tally for key, tally in found.items() if not tally.is_empty()}


def _counted_durations(
    timeline: Timeline | None,
) -> tuple[Micros, list[tuple[DurationOrigin, Micros]]] | None:
    """When a kept job completed and its known durations, or ``None`` unless it is complete
    (what ``contributions`` counts, before it is spread over the grains)."""
    if timeline is None or timeline.completed_at is None or status_of(timeline) is not JobStatus.COMPLETE:
        return None
    durations = [(origin, duration_of(timeline, origin)) for origin in DurationOrigin]
    return timeline.completed_at, [(origin, micros) for origin, micros in durations if micros is not None]


def pruned(jobs: Iterable[tuple[str, str, Timeline]]) -> dict[RollupKey, Tally]:
    """The changes of retention deleting completed jobs ``(job_class, queue, timeline)``: their
    durations go out of the kept periods and into ``pruned``."""
    found: dict[RollupKey, Tally] = {}
    for job_class, queue, timeline in jobs:
        for sign, grains in ((-1, KEPT_GRAINS), (1, (Grain.PRUNED,))):
            for key, micros in contributions(job_class, queue, timeline, grains):
                found.setdefault(key, Tally()).add(micros, sign)
    return found
