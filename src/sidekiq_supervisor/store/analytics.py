"""The dashboard's reads: events per minute, per-class duration summaries, long-running jobs.

Each query is bounded by an index so that a page load does not scan a table of millions of rows:

- events per minute find the window's first event by a binary search on the primary key of
  ``job_events`` (ids grow with ``recorded_at``), then read only the window's rows;
- distinct job classes come from a loose index scan of ``(job_class, id)``;
- duration summaries read the newest ``sample`` completed jobs of a class through
  ``(job_class, id)`` (or of all classes through ``(status, id)``), never the whole history;
- bounded status counts stop after ``cap`` rows of ``(status, id)``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, func, literal, select
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.durations import DurationOrigin
from sidekiq_supervisor.domain.model import JobStatus, Micros
from sidekiq_supervisor.store.records import StoredJob, job_from_row
from sidekiq_supervisor.store.schema import job_events, jobs

MINUTE: Micros = 60_000_000
# Commits of several writer processes interleave: an id may carry a recorded_at a little older
# than its predecessor's. The search starts this much earlier and the window filter trims it.
RECORDED_SLACK: Micros = 2 * MINUTE


@dataclass(frozen=True, slots=True)
class ClassSummary:
    """Durations (microseconds) of one job class's sampled completed jobs, from one origin."""

    job_class: str | None
    count: int
    mean: float | None
    p50: Micros | None
    p95: Micros | None
    p99: Micros | None
    longest: Micros | None


def bounded_status_counts(connection: Connection, cap: int) -> dict[JobStatus, int]:
    """Jobs per status, each counted up to ``cap`` (a value of ``cap`` means "at least")."""
    counts = {}
    for status in JobStatus:
        capped = select(literal(1)).where(jobs.c.status == status.value).limit(cap).subquery()
        counts[status] = connection.execute(select(func.count()).select_from(capped)).scalar_one()
    return counts


def highest_job_id(connection: Connection) -> int:
    """The newest job id (an upper bound of the number of jobs ever stored); 0 when empty."""
    return connection.execute(select(func.max(jobs.c.id))).scalar_one() or 0


def first_event_id_recorded_since(connection: Connection, since: Micros) -> int | None:
    """The smallest event id recorded at or after ``since`` (by bisection on the primary key)."""
    low, high = connection.execute(select(func.min(job_events.c.id), func.max(job_events.c.id))).one()
    if high is None:
        return None
    answer = None
    while low <= high:
        middle = (low + high) // 2
        row = connection.execute(
            select(job_events.c.id, job_events.c.recorded_at)
            .where(job_events.c.id >= middle)
            .order_by(job_events.c.id)
            .limit(1)
        ).first()
        if row is None:
            break
        if row.recorded_at >= since:
            answer, high = row.id, middle - 1
        else:
            low = row.id + 1
    return answer


def events_per_minute(connection: Connection, since: Micros, until: Micros) -> dict[str, dict[int, int]]:
    """For each event kind, the number of events per minute (minute start, in micros) in the window."""
    first_id = first_event_id_recorded_since(connection, since - RECORDED_SLACK)
    if first_id is None:
        return {}
    minute = (job_events.c.at // MINUTE).label("minute")
    query = (
        select(job_events.c.kind, minute, func.count())
        .where(job_events.c.id >= first_id, job_events.c.at >= since, job_events.c.at < until)
        .group_by(job_events.c.kind, minute)
    )
    series: dict[str, dict[int, int]] = defaultdict(dict)
    for kind, bucket, count in connection.execute(query):
        series[kind][int(bucket) * MINUTE] = count
    return dict(series)


def job_classes(connection: Connection, limit: int) -> list[str]:
    """Distinct job classes in name order, by a loose index scan of ``(job_class, id)``.

    ``SELECT DISTINCT`` would read every row on PostgreSQL; each step of this recursive query
    is one index probe for the next greater class name.
    """
    first = select(func.min(jobs.c.job_class).label("name")).cte("classes", recursive=True)
    following = select(
        select(func.min(jobs.c.job_class)).where(jobs.c.job_class > first.c.name).scalar_subquery()
    ).where(first.c.name.is_not(None))
    classes = first.union_all(following)
    query = select(classes.c.name).where(classes.c.name.is_not(None)).limit(limit)
    return [name for (name,) in connection.execute(query)]


def _sampled_durations(origin: DurationOrigin, job_class: str | None, sample: int) -> Select[Micros]:
    begin = jobs.c.queued_at if origin is DurationOrigin.QUEUED else jobs.c.started_at
    conditions: list[ColumnElement[bool]] = [
        jobs.c.status == JobStatus.COMPLETE.value,
        begin.is_not(None),
        jobs.c.completed_at.is_not(None),
    ]
    if job_class is not None:
        conditions.append(jobs.c.job_class == job_class)
    duration = (jobs.c.completed_at - begin).label("duration")
    return select(duration).where(*conditions).order_by(jobs.c.id.desc()).limit(sample)


def recent_durations(
    connection: Connection, job_class: str | None, sample: int
) -> list[tuple[Micros | None, Micros | None]]:
    """(from queued, from started) of the newest ``sample`` completed jobs of a class (or of all).

    One read serves both seed questions: a page summarising both origins per class reads each
    class's rows once, through ``(job_class, id)``, instead of once per origin with window
    functions in SQL (2.5 s for the durations page at a million jobs; Python sorts 10,000
    numbers in about a millisecond).
    """
    conditions: list[ColumnElement[bool]] = [
        jobs.c.status == JobStatus.COMPLETE.value,
        jobs.c.completed_at.is_not(None),
    ]
    if job_class is not None:
        conditions.append(jobs.c.job_class == job_class)
    query = (
        select(jobs.c.completed_at - jobs.c.queued_at, jobs.c.completed_at - jobs.c.started_at)
        .where(*conditions)
        .order_by(jobs.c.id.desc())
        .limit(sample)
    )
    return [(queued, started) for queued, started in connection.execute(query)]


def sampled_durations(
    connection: Connection, origin: DurationOrigin, job_class: str | None, sample: int
) -> list[Micros]:
    """The durations of the newest ``sample`` completed jobs (of a class, or of all)."""
    return [d for (d,) in connection.execute(_sampled_durations(origin, job_class, sample))]


def uncompleted_before(connection: Connection, started_before: Micros, limit: int) -> list[StoredJob]:
    """Uncompleted jobs whose latest start is older than ``started_before``, oldest first.

    Reads the ``started`` jobs through ``(status, id)`` and sorts them by start: uncompleted jobs
    are the ones running right now, a small set next to the completed history.
    """
    query = (
        select(jobs)
        .where(jobs.c.status == JobStatus.STARTED.value, jobs.c.started_at < started_before)
        .order_by(jobs.c.started_at, jobs.c.id)
        .limit(limit)
    )
    return [job_from_row(row) for row in connection.execute(query)]
