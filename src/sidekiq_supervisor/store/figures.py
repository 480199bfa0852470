"""The ledger's reads behind GET /metrics (and GET /api/v1/stats): jobs per status
(``store.job_counts.jobs_per_status``), the uncompleted jobs, the busiest classes.

Each read is bounded by an index, measured at a million jobs (``bench/metrics.py``):

- jobs per status: read from the counts the writer keeps (``store.job_counts``), a few rows;
- the uncompleted jobs: their jid, start and worker through ``(status, id)`` (for their ages and
  their liveness), a read that grows with the uncompleted jobs only;
- the busiest classes: the newest ``window`` job rows through the primary key (7 ms for 20,000).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.model import JobStatus, Micros
from sidekiq_supervisor.store.schema import jobs


@dataclass(frozen=True, slots=True)
class UncompletedJob:
    """What the figures need of an uncompleted job: who started it, and when."""

    jid: str
    started_at: Micros | None
    worker: str | None


def uncompleted_jobs(connection: Connection, *, chunk: int = 1000) -> Iterator[list[UncompletedJob]]:
    """Every uncompleted (started) job, ``chunk`` at a time: its jid, latest start and worker."""
    query = select(jobs.c.jid, jobs.c.started_at, jobs.c.worker).where(
        jobs.c.status == JobStatus.STARTED.value
    )
    for rows in connection.execute(query).partitions(chunk):
        yield [UncompletedJob(jid, started_at, worker) for jid, started_at, worker in rows]


def recent_class_counts(connection: Connection, window: int) -> dict[str, int]:
    """Jobs per class among the newest ``window`` jobs of the ledger."""
    newest = select(jobs.c.job_class).order_by(jobs.c.id.desc()).limit(window).subquery()
    query = select(newest.c.job_class, func.count()).group_by(newest.c.job_class)
    return {job_class: count for job_class, count in connection.execute(query)}
