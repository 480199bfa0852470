"""Retention: deleting old ledger rows in small batches, after rolling the durations up.

Each function does one batch inside the caller's transaction, so that ingest (which shares
SQLite's single write lock) waits for a few milliseconds at most, never for a whole prune.

- Completed jobs whose completion is older than the cutoff go with their whole history; their
  durations move from the kept jobs' roll-ups to the pruned ones (``domain.rollups``) in the same
  transaction, so each job is counted exactly once: as a kept job, then a pruned one. They leave
  the jobs per status (``store.job_counts``) in that transaction too.
- History older than its cutoff (by ``recorded_at``, the service's own clock) is trimmed from
  the oldest end. ``restarted`` events stay: they are what keeps a restarted original from
  coming back when a late report about it arrives.
- On PostgreSQL, where ``job_events`` is partitioned by day of ``at`` (``store/partitions.py``),
  history goes a whole day at a time: a day's partition is dropped once all of it is older than
  the cutoff (so an event stays up to a day longer than its retention), after moving the reports
  received since to the DEFAULT partition. Restart tombstones have a partition of their own,
  never dropped. Only the DEFAULT partition is trimmed row by row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, TableClause, delete, select, text

from sidekiq_supervisor.domain import rollups
from sidekiq_supervisor.domain.job_counts import Move, count_changes
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Micros, Timeline
from sidekiq_supervisor.store.engine import lock_key
from sidekiq_supervisor.store.job_counts import apply_count_changes
from sidekiq_supervisor.store.rollups import apply_changes
from sidekiq_supervisor.store.schema import job_events, job_payloads, jobs

# Any constant works: it names the lock that keeps two processes' pruners from interleaving.
PRUNE_LOCK_KEY = 0x5155_5045_5256


@dataclass(frozen=True, slots=True)
class PrunedBatch:
    """One batch of completed jobs: how many were looked at, how many deleted, where to go on."""

    scanned: int
    deleted: int
    last_id: int | None
    # Completed before the cutoff by their reports' times (deleted, or kept as received since).
    due: int = 0


def lock_against_other_pruners(connection: Connection) -> None:
    """On PostgreSQL, wait for any other process's prune transaction (SQLite has one writer)."""
    if connection.dialect.name == "postgresql":
        key = lock_key(connection.engine, PRUNE_LOCK_KEY)
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def prune_completed_batch(connection: Connection, cutoff: Micros, after_id: int, limit: int) -> PrunedBatch:
    """Delete (after rolling up) the completed jobs among the next ``limit`` that ended before ``cutoff``."""
    query = (
        select(
            jobs.c.id,
            jobs.c.jid,
            jobs.c.job_class,
            jobs.c.queue,
            jobs.c.queued_at,
            jobs.c.started_at,
            jobs.c.completed_at,
        )
        .where(jobs.c.status == JobStatus.COMPLETE.value, jobs.c.id > after_id)
        .order_by(jobs.c.id)
        .limit(limit)
    )
    if connection.dialect.name == "postgresql":
        query = query.with_for_update()  # a late report must not update a row being deleted
    rows = connection.execute(query).all()
    due = [row for row in rows if row.completed_at is not None and row.completed_at < cutoff]
    # A client's clock (or a late resend) may date a report long before it arrived: a job is
    # deleted only once every report of it was also received before the cutoff.
    fresh = _received_since(connection, [row.jid for row in due], cutoff)
    old = [row for row in due if row.jid not in fresh]
    if old:
        timelines = (
            (row.job_class, row.queue, Timeline(row.queued_at, row.started_at, row.completed_at))
            for row in old
        )
        apply_changes(connection, rollups.pruned(timelines))
        jids = [row.jid for row in old]
        connection.execute(delete(job_events).where(job_events.c.jid.in_(jids)))
        connection.execute(delete(job_payloads).where(job_payloads.c.jid.in_(jids)))
        connection.execute(delete(jobs).where(jobs.c.id.in_([row.id for row in old])))
        complete = JobStatus.COMPLETE
        apply_count_changes(
            connection, count_changes(Move(r.job_class, r.queue, complete, None) for r in old)
        )
    return PrunedBatch(len(rows), len(old), rows[-1].id if rows else None, len(due))


def _received_since(connection: Connection, jids: list[str], cutoff: Micros) -> set[str]:
    if not jids:
        return set()
    query = select(job_events.c.jid).where(job_events.c.jid.in_(jids), job_events.c.recorded_at >= cutoff)
    return set(connection.execute(query.distinct()).scalars())


def prune_history_batch(
    connection: Connection, cutoff: Micros, limit: int, source: TableClause = job_events
) -> int:
    """Delete up to ``limit`` of the oldest events recorded before ``cutoff`` (from ``source``,
    ``job_events`` or its DEFAULT partition); how many went."""
    oldest = (
        select(source.c.id)
        .where(source.c.kind != EventKind.RESTARTED.value, source.c.recorded_at < cutoff)
        .order_by(source.c.id)
        .limit(limit)
    )
    ids = list(connection.execute(oldest).scalars())
    if ids:
        connection.execute(delete(source).where(source.c.id.in_(ids)))
    return len(ids)


def oldest_history_recorded_at(connection: Connection, source: TableClause = job_events) -> Micros | None:
    """When the oldest prunable event of ``source`` was recorded (ids follow recording order), or ``None``."""
    query = (
        select(source.c.recorded_at)
        .where(source.c.kind != EventKind.RESTARTED.value)
        .order_by(source.c.id)
        .limit(1)
    )
    return connection.execute(query).scalar()
