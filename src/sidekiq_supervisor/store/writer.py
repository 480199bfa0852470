"""The ledger's write path: a batch of reports in one transaction.

Statements per batch, whatever its size: find which jids were restarted (their rows are gone and
must stay gone), create the jobs not seen before, read (and on PostgreSQL lock) the batch's rows,
append the events (a resent report collides on the unique key and is dropped), then update the
rows whose timeline changed. Rows are touched in jid order so that concurrent writer processes on
PostgreSQL cannot deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.model import EventKind, JobStatus, Micros, Report, Timeline
from sidekiq_supervisor.domain.status import fold_events, status_of
from sidekiq_supervisor.store.records import StoredJob, job_from_row
from sidekiq_supervisor.store.schema import job_events, jobs

# Keeps every IN list and multi-row VALUES well inside both databases' bind-parameter limits.
CHUNK = 500

EventKey = tuple[str, str, Micros]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one report did: the job as committed at the end of its batch, and whether it is new.

    ``job`` is ``None`` when the jid was restarted: the report joins its history, but the job
    itself lives on under the new jid.
    """

    jid: str
    job: StoredJob | None
    created: bool


def write_reports(
    connection: Connection, reports: Sequence[Report], recorded_at: Micros
) -> list[WriteResult]:
    """Store ``reports`` inside the caller's transaction; one result per report, in order."""
    first_report = {}
    for report in reports:
        first_report.setdefault(report.jid, report)
    restarted = _restarted(connection, sorted(first_report))
    jids = sorted(jid for jid in first_report if jid not in restarted)
    created = _create_missing_jobs(connection, [first_report[jid] for jid in jids])
    rows = _lock_jobs(connection, jids)
    new_events = _append_events(connection, reports, recorded_at)
    changed = _fold_new_events(rows, reports, new_events)
    _update_jobs(connection, [rows[jid] for jid in sorted(changed)])
    return _results(reports, rows, created)


def dialect_insert(connection: Connection, table: Any) -> Any:
    """An INSERT with the ON CONFLICT clauses of the connection's database."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def _restarted(connection: Connection, jids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(jids):
        query = select(job_events.c.jid).where(
            job_events.c.jid.in_(chunk), job_events.c.kind == EventKind.RESTARTED.value
        )
        found.update(connection.execute(query).scalars())
    return found


def _create_missing_jobs(connection: Connection, firsts: list[Report]) -> set[str]:
    statement = (
        dialect_insert(connection, jobs).on_conflict_do_nothing(index_elements=["jid"]).returning(jobs.c.jid)
    )
    created: set[str] = set()
    for chunk in _chunks(firsts):
        params = [
            {
                "jid": report.jid,
                "job_class": report.job_class,
                "queue": report.queue,
                "arguments": report.arguments,
                "status": JobStatus.QUEUED.value,
                "attempts": 0,
            }
            for report in chunk
        ]
        created.update(connection.execute(statement, params).scalars())
    return created


def _lock_jobs(connection: Connection, jids: list[str]) -> dict[str, StoredJob]:
    rows: dict[str, StoredJob] = {}
    for chunk in _chunks(jids):
        query = select(jobs).where(jobs.c.jid.in_(chunk)).order_by(jobs.c.jid)
        if connection.dialect.name == "postgresql":
            query = query.with_for_update()
        for row in connection.execute(query):
            rows[row.jid] = job_from_row(row)
    return rows


def _append_events(connection: Connection, reports: Sequence[Report], recorded_at: Micros) -> set[EventKey]:
    distinct = {(r.jid, r.kind.value, r.at): r for r in reports}
    statement = (
        dialect_insert(connection, job_events)
        .on_conflict_do_nothing(index_elements=["jid", "kind", "at"])
        .returning(job_events.c.jid, job_events.c.kind, job_events.c.at)
    )
    inserted: set[EventKey] = set()
    for chunk in _chunks(sorted(distinct)):
        params = [
            {"jid": j, "kind": k, "at": at, "recorded_at": recorded_at, "detail": _detail(distinct[j, k, at])}
            for j, k, at in chunk
        ]
        inserted.update((row.jid, row.kind, row.at) for row in connection.execute(statement, params))
    return inserted


def _detail(report: Report) -> str | None:
    """The history's JSON detail of a report (texts already validated JSON, so joined as is)."""
    if report.worker is not None:
        return f'{{"worker":{report.worker}}}'
    if report.error is not None:
        return f'{{"error":{report.error}}}'
    return None


def _fold_new_events(
    rows: dict[str, StoredJob], reports: Sequence[Report], new_events: set[EventKey]
) -> set[str]:
    fresh: dict[str, list[Report]] = defaultdict(list)
    for report in reports:
        key = (report.jid, report.kind.value, report.at)
        # A jid missing from rows was restarted: the history has the report, the row stays gone.
        if key in new_events and report.jid in rows:
            new_events.discard(key)  # the same report twice in one batch counts once
            fresh[report.jid].append(report)
    for jid, new in fresh.items():
        job = rows[jid]
        timeline = fold_events(((report.kind, report.at) for report in new), start=job.timeline)
        rows[jid] = replace(
            job, timeline=timeline, status=status_of(timeline), worker=_latest_worker(job, new, timeline)
        )
    return set(fresh)


def _latest_worker(job: StoredJob, new: list[Report], timeline: Timeline) -> str | None:
    """The worker of the latest start: a new start's, if one of them is the latest."""
    for report in new:
        if report.kind is EventKind.STARTED and report.at == timeline.started_at:
            return report.worker
    return job.worker


def _update_jobs(connection: Connection, changed: list[StoredJob]) -> None:
    if not changed:
        return
    # Class, queue and arguments come from a job's first report and never change afterwards.
    statement = (
        update(jobs)
        .where(jobs.c.id == bindparam("row_id"))
        .values(
            status=bindparam("new_status"),
            queued_at=bindparam("new_queued_at"),
            started_at=bindparam("new_started_at"),
            completed_at=bindparam("new_completed_at"),
            attempts=bindparam("new_attempts"),
            worker=bindparam("new_worker"),
        )
    )
    params = [
        {
            "row_id": job.id,
            "new_status": job.status.value,
            "new_queued_at": job.timeline.queued_at,
            "new_started_at": job.timeline.started_at,
            "new_completed_at": job.timeline.completed_at,
            "new_attempts": job.timeline.attempts,
            "new_worker": job.worker,
        }
        for job in changed
    ]
    connection.execute(statement, params)


def _results(reports: Sequence[Report], rows: dict[str, StoredJob], created: set[str]) -> list[WriteResult]:
    unannounced = set(created)
    results = []
    for report in reports:
        results.append(WriteResult(report.jid, rows.get(report.jid), report.jid in unannounced))
        unannounced.discard(report.jid)
    return results
