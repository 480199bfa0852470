"""Bounded reads of the ledger for the dashboard and the alerts: status counts, recent events,
a class's newest durations, long-running jobs.

Each query is bounded by an index so that it does not scan a table of millions of rows:

- the first event recorded since a time is found by a binary search on the primary key of
  ``job_events`` (ids grow with ``recorded_at``);
- a class's newest durations come through ``(job_class, id)``, never the whole history;
- bounded status counts stop after ``cap`` rows of ``(status, id)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.engine import Connection

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


def uncompleted_before(connection: Connection, started_before: Micros, limit: int) -> list[StoredJob]:
    """Uncompleted jobs whose latest start is older than ``started_before``, oldest first, through
    the partial index of uncompleted jobs by start."""
    if connection.dialect.name == "sqlite":
        # SQLite uses a partial index only when the query's WHERE says what the index's does (a
        # bound status cannot), and without statistics (the service never runs ANALYZE) it would
        # still take (status, id) and sort every running job: the query names the index.
        columns = ", ".join(column.name for column in jobs.columns)
        rows = connection.exec_driver_sql(
            f"SELECT {columns} FROM jobs INDEXED BY ix_jobs_started_at_uncompleted "
            f"WHERE status = '{JobStatus.STARTED.value}' AND started_at < ? ORDER BY started_at, id LIMIT ?",
            (started_before, limit),
        )
        return [job_from_row(row) for row in rows]
    query = (
        select(jobs)
        .where(jobs.c.status == JobStatus.STARTED.value, jobs.c.started_at < started_before)
        .order_by(jobs.c.started_at, jobs.c.id)
        .limit(limit)
    )
    return [job_from_row(row) for row in connection.execute(query)]
