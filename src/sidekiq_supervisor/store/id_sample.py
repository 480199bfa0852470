"""Estimates from a sample of the jobs read as windows of ids, on either database.

A filter is two parts: the part whose number of jobs the ledger keeps (status, class and queue in
``store.job_counts``; a duration list's jobs in the roll-ups), and the rest (the arguments
needle, ``started_before``). The sample reads jobs of the kept part, and the share of them that
the rest matches scales the kept number: a needle among the few started jobs is sampled among
those, not among every job.

Job ids grow with time, so windows spread evenly over the ids draw from every part of the
history: a stratified sample, whose place in each stretch is drawn from a fixed seed so that the
same ledger gives the same estimate from one refresh to the next. Each window is a SELECT of its
own, joined by UNION ALL, with the kept part's conditions in its WHERE: each is read by its range
of ids (through the kept part's index, where there is one). Given the windows as a table to join,
PostgreSQL walked the kept part's whole index instead (570 ms for a sample of 15,000 queued jobs
at a million). The rest is evaluated inside a CASE, so that every job of the kept part in the
windows is read and counted: the sample's size.

PostgreSQL's ``TABLESAMPLE SYSTEM`` reads whole pages at random: 5% of a large table's pages
took 0.4-0.9 s at three million jobs, against 40-100 ms for these windows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import ColumnElement, Subquery, case, func, select, union_all
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary, summarize
from sidekiq_supervisor.domain.model import JobStatus
from sidekiq_supervisor.store.job_counts import counted
from sidekiq_supervisor.store.queries import SAMPLE_SEED, JobFilter, duration_of_job, matches
from sidekiq_supervisor.store.rollups import kept_count
from sidekiq_supervisor.store.schema import jobs

# How many windows a sample is read in: enough to cover weeks of history evenly, few enough that
# each window's seek is small beside the rows it reads.
WINDOWS = 64


@dataclass(frozen=True, slots=True)
class SampledCount:
    """``matching`` jobs among the ``rows_read`` jobs of the kept part sampled, which holds
    ``population`` jobs in all; ``whole`` when the sample read every one of them."""

    matching: int
    rows_read: int
    population: int
    whole: bool


@dataclass(frozen=True, slots=True)
class SampledDurations:
    """The exact ``summary`` of the matching durations among the ``rows_read`` jobs of the kept
    part sampled, which holds ``population`` jobs in all; ``whole`` when the sample read every
    one of them."""

    summary: DurationSummary
    rows_read: int
    population: int
    whole: bool


def id_windows(
    lowest: int, highest: int, ids: int, *, windows: int = WINDOWS, seed: int = SAMPLE_SEED
) -> list[tuple[int, int]]:
    """About ``ids`` ids of ``lowest``..``highest`` as inclusive ranges, one in each of up to
    ``windows`` equal stretches of it, at a place in the stretch drawn from ``seed``."""
    span = highest - lowest + 1
    if ids >= span:
        return [(lowest, highest)]
    windows = max(1, min(windows, ids))
    width = max(1, ids // windows)
    draw = random.Random(seed)
    ranges = []
    for stretch in range(windows):
        start = lowest + span * stretch // windows
        end = lowest + span * (stretch + 1) // windows - 1
        first = start + draw.randint(0, max(0, end - start + 1 - width))
        ranges.append((first, min(end, first + width - 1)))
    return ranges


def kept_part(job_filter: JobFilter) -> JobFilter:
    """The part of ``job_filter`` whose number of jobs the ledger keeps."""
    return replace(job_filter, needle=None, started_before=None)


def kept_size(connection: Connection, kept: JobFilter) -> int | None:
    """How many jobs a filter of ``kept_part`` holds, read from the counts the writer keeps;
    ``None`` for a duration list of a status other than ``complete`` (no kept count; it is empty)."""
    if kept.duration_from is None:
        return counted(connection, status=kept.status, job_class=kept.job_class, queue=kept.queue)
    if kept.status not in (None, JobStatus.COMPLETE):
        return None
    return kept_count(connection, kept.duration_from, kept.job_class, kept.queue)


def sample_windows(connection: Connection, rows: int, population: int) -> tuple[list[tuple[int, int]], bool]:
    """Windows of ids holding about ``rows`` of ``population`` jobs spread over every id, and
    whether they span every id. Ids missing (pruned or restarted jobs, jobs of other statuses)
    widen the windows."""
    lowest, highest = connection.execute(
        select(
            select(func.min(jobs.c.id)).scalar_subquery(),  # one each: SQLite reads either
            select(func.max(jobs.c.id)).scalar_subquery(),  # end of the key only when alone
        )
    ).one()
    if lowest is None:
        return [], True
    span = highest - lowest + 1
    ids = span if rows >= population else min(span, -(-rows * span // max(1, population)))
    return id_windows(lowest, highest, ids), ids >= span


@dataclass(frozen=True, slots=True)
class _Draw:
    """Where a sample of ``job_filter``'s kept part is read: its ``windows`` of ids."""

    kept: JobFilter
    population: int
    windows: list[tuple[int, int]]
    whole: bool


def _draw(connection: Connection, job_filter: JobFilter, rows: int) -> _Draw | None:
    kept = kept_part(job_filter)
    population = kept_size(connection, kept)
    if population is None:
        return None
    windows, whole = sample_windows(connection, rows, population) if population else ([], True)
    return _Draw(kept, population, windows, whole)


def sampled_count(connection: Connection, job_filter: JobFilter, *, rows: int) -> SampledCount | None:
    """How many of about ``rows`` jobs of ``job_filter``'s kept part, sampled by id, the rest of
    it matches; ``None`` when the kept part has no kept count."""
    draw = _draw(connection, job_filter, rows)
    if draw is None:
        return None
    if not draw.windows:
        return SampledCount(0, 0, 0, whole=True)
    sampled = _windowed(draw, case((_rest(job_filter), 1), else_=0))
    query = select(func.count(), func.coalesce(func.sum(sampled.c.value), 0))
    rows_read, matching = connection.execute(query).one()
    return SampledCount(int(matching), int(rows_read), draw.population, draw.whole)


def sampled_durations(
    connection: Connection, origin: DurationOrigin, job_filter: JobFilter, *, rows: int
) -> SampledDurations | None:
    """The durations from ``origin`` of about ``rows`` jobs of the duration list's kept part,
    sampled by id, that the rest of it matches; ``None`` when the kept part has no kept count."""
    job_filter = replace(job_filter, duration_from=origin)
    draw = _draw(connection, job_filter, rows)
    if draw is None:
        return None
    if not draw.windows:
        return SampledDurations(DurationSummary.empty(), 0, 0, whole=True)
    sampled = _windowed(draw, case((_rest(job_filter), duration_of_job(origin))))
    read = connection.execute(select(sampled.c.value)).scalars().all()
    durations = sorted(d for d in read if d is not None)
    return SampledDurations(summarize(durations), len(read), draw.population, draw.whole)


def _rest(job_filter: JobFilter) -> ColumnElement[bool]:
    """The conditions of ``job_filter`` beyond its kept part."""
    return matches(JobFilter(needle=job_filter.needle, started_before=job_filter.started_before))


def _windowed(draw: _Draw, value: ColumnElement[Any]) -> Subquery:
    """``value`` of each job of the kept part in the windows, as the column ``value``."""
    selects = [
        select(value.label("value")).where(jobs.c.id.between(first, last), matches(draw.kept))
        for first, last in draw.windows
    ]
    if len(selects) == 1:
        return selects[0].subquery("sampled")
    return union_all(*selects).subquery("sampled")
