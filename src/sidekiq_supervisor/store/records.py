"""Rows of the ledger as typed records, and the mapping from SQL rows to them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sidekiq_supervisor.domain.model import EventKind, JobStatus, Micros, Timeline


@dataclass(frozen=True, slots=True)
class StoredJob:
    """One row of the ``jobs`` table. ``arguments`` is the stored JSON text."""

    id: int
    jid: str
    job_class: str
    queue: str
    arguments: str
    status: JobStatus
    timeline: Timeline
    restarted_from: str | None = None
    worker: str | None = None


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One row of a job's append-only history."""

    jid: str
    kind: EventKind
    at: Micros
    recorded_at: Micros
    detail: str | None = None


def job_from_row(row: Any) -> StoredJob:
    """Map a ``jobs`` row (any row with its columns) to a record."""
    return StoredJob(
        id=row.id,
        jid=row.jid,
        job_class=row.job_class,
        queue=row.queue,
        arguments=row.arguments,
        status=JobStatus(row.status),
        timeline=Timeline(row.queued_at, row.started_at, row.completed_at, row.attempts),
        restarted_from=row.restarted_from,
        worker=row.worker,
    )
