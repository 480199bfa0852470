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
    """Map a ``jobs`` row (``select(jobs)``: every column, in table order) to a record."""
    # Positional unpacking: the writer maps every row of every batch, and named access costs more.
    (id_, jid, job_class, queue, arguments, status, queued_at, started_at, completed_at, attempts,
     restarted_from, worker) = row  # fmt: skip
    return StoredJob(
        id_,
        jid,
        job_class,
        queue,
        arguments,
        JobStatus(status),
        Timeline(queued_at, started_at, completed_at, attempts),
        restarted_from,
        worker,
    )
