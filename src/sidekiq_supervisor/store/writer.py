"""The ledger's write path: a batch of reports in one transaction.

Statements per batch, whatever its size: create the jobs not seen before (but not those
restarted: their rows are gone and must stay gone), read (and on PostgreSQL lock) the batch's
rows, keep the payloads of the stored ones, append the events (a resent report collides on the
unique key and is dropped), then update the rows whose timeline changed. The read side's
summaries follow in the same transaction: one statement adds the new events to their counts per
minute (``store.event_counts``); when a job completed or its completed timeline moved, one adds
that to the duration roll-ups (``store.rollups``; a second deletes a roll-up whose count fell to
zero); and when a job is new or its status moved, one adds that to the jobs per class, queue and
status (``store.job_counts``). Rows are touched in jid order, roll-ups after jobs and counts last,
so that concurrent writer processes on PostgreSQL cannot deadlock.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain import rollups
from sidekiq_supervisor.domain.job_counts import Move, count_changes
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Micros, Report, Timeline
from sidekiq_supervisor.domain.status import fold_events, status_of
from sidekiq_supervisor.store.bulk import insert_ignoring_conflicts, select_where_in, update_by_key
from sidekiq_supervisor.store.event_counts import count_events
from sidekiq_supervisor.store.job_counts import apply_count_changes
from sidekiq_supervisor.store.records import StoredJob, job_from_row
from sidekiq_supervisor.store.rollups import apply_changes
from sidekiq_supervisor.store.schema import job_events, job_payloads, jobs

# Keeps every IN list and multi-row VALUES well inside both databases' bind-parameter limits.
CHUNK = 500
JOB_COLUMNS = [column.name for column in jobs.columns]  # in table order, as job_from_row expects
NEW_JOB_COLUMNS = ["jid", "job_class", "queue", "arguments", "status", "attempts"]
TIMELINE_COLUMNS = ["status", "queued_at", "started_at", "completed_at", "attempts", "worker"]
EVENT_COLUMNS = ["jid", "kind", "at", "recorded_at", "detail"]
EVENT_KEY = ["jid", "kind", "at"]
PAYLOAD_COLUMNS = ["jid", "form", "payload"]

EventKey = tuple[str, str, Micros]
# A new job's row is not created for a jid that was restarted (the kind is our own constant).
NOT_RESTARTED = (
    "NOT EXISTS (SELECT 1 FROM job_events"
    f" WHERE job_events.jid = v.jid AND job_events.kind = '{EventKind.RESTARTED.value}')"
)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What one report did: the job as committed at the end of its batch, and whether it is new.

    ``job`` is ``None`` when the jid was restarted: the report joins its history, but the job
    itself lives on under the new jid. ``fresh`` says the report was new to the job (not a resend,
    nor its twin earlier in the batch), and ``before`` is the job's timeline before the batch.
    """

    jid: str
    job: StoredJob | None
    created: bool
    fresh: bool = False
    before: Timeline | None = None


def write_reports(
    connection: Connection, reports: Sequence[Report], recorded_at: Micros
) -> list[WriteResult]:
    """Store ``reports`` inside the caller's transaction; one result per report, in order."""
    first_report: dict[str, Report] = {}
    for report in reports:
        first_report.setdefault(report.jid, report)
    jids = sorted(first_report)
    created = _create_missing_jobs(connection, [first_report[jid] for jid in jids])
    rows = _lock_jobs(connection, jids)
    _keep_payloads(connection, reports, rows)
    before = {jid: job.timeline for jid, job in rows.items()}
    status_before = {jid: job.status for jid, job in rows.items()}
    new_events = _append_events(connection, reports, recorded_at)
    count_events(connection, ((kind, at) for _, kind, at in new_events))
    fresh = _fold_new_events(rows, reports, new_events)
    changed = [rows[jid] for jid in sorted({reports[i].jid for i in fresh})]
    _update_jobs(connection, changed)
    apply_changes(
        connection,
        rollups.changes((job.job_class, job.queue, before[job.jid], job.timeline) for job in changed),
    )
    apply_count_changes(connection, count_changes(_moves(rows, created, changed, status_before)))
    return _results(reports, rows, created, fresh, before)


def dialect_insert(connection: Connection, table: Any) -> Any:
    """An INSERT with the ON CONFLICT clauses of the connection's database."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    return dialect.insert(table)


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, CHUNK)):
        yield chunk


def _create_missing_jobs(connection: Connection, firsts: list[Report]) -> set[str]:
    """Create the jobs not stored yet, except those restarted: their rows are gone and must stay
    gone (a late report of the original joins its history only)."""
    created: set[str] = set()
    queued = JobStatus.QUEUED.value
    for chunk in _chunks(firsts):
        rows = [(r.jid, r.job_class, r.queue, r.arguments, queued, 0) for r in chunk]
        inserted = insert_ignoring_conflicts(
            connection, jobs, NEW_JOB_COLUMNS, rows, conflict=["jid"], returning=["jid"], where=NOT_RESTARTED
        )
        created.update(jid for (jid,) in inserted)
    return created


def _keep_payloads(connection: Connection, reports: Sequence[Report], stored: dict[str, StoredJob]) -> None:
    """Keep the first payload reported for each stored job; later ones collide on the jid and are
    dropped, and a restarted job (no row) keeps none."""
    first: dict[str, tuple[str, str, str | None]] = {}
    for r in reports:
        if r.payload_form is not None and r.jid in stored:
            first.setdefault(r.jid, (r.jid, r.payload_form, r.payload))
    for chunk in _chunks(sorted(first)):
        rows = [first[jid] for jid in chunk]
        insert_ignoring_conflicts(
            connection, job_payloads, PAYLOAD_COLUMNS, rows, conflict=["jid"], returning=["jid"]
        )


def _lock_jobs(connection: Connection, jids: list[str]) -> dict[str, StoredJob]:
    rows: dict[str, StoredJob] = {}
    for chunk in _chunks(jids):
        for row in select_where_in(connection, jobs, JOB_COLUMNS, "jid", chunk, order_by="jid", lock=True):
            job = job_from_row(row)
            rows[job.jid] = job
    return rows


def _append_events(connection: Connection, reports: Sequence[Report], recorded_at: Micros) -> set[EventKey]:
    distinct = {(r.jid, r.kind.value, r.at): r for r in reports}
    inserted: set[EventKey] = set()
    for chunk in _chunks(sorted(distinct)):
        rows = [(jid, kind, at, recorded_at, _detail(distinct[jid, kind, at])) for jid, kind, at in chunk]
        inserted.update(
            insert_ignoring_conflicts(
                connection, job_events, EVENT_COLUMNS, rows, conflict=EVENT_KEY, returning=EVENT_KEY
            )
        )
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
) -> set[int]:
    """Fold each report new to its job into the job's row; the positions of those reports."""
    fresh: dict[str, list[Report]] = defaultdict(list)
    positions = set()
    for position, report in enumerate(reports):
        key = (report.jid, report.kind.value, report.at)
        # A jid missing from rows was restarted: the history has the report, the row stays gone.
        if key in new_events and report.jid in rows:
            new_events.discard(key)  # the same report twice in one batch counts once
            fresh[report.jid].append(report)
            positions.add(position)
    for jid, new in fresh.items():
        job = rows[jid]
        timeline = fold_events(((report.kind, report.at) for report in new), start=job.timeline)
        rows[jid] = replace(
            job, timeline=timeline, status=status_of(timeline), worker=_latest_worker(job, new, timeline)
        )
    return positions


def _latest_worker(job: StoredJob, new: list[Report], timeline: Timeline) -> str | None:
    """The worker of the latest start: a new start's, if one of them is the latest."""
    for report in new:
        if report.kind is EventKind.STARTED and report.at == timeline.started_at:
            return report.worker
    return job.worker


def _update_jobs(connection: Connection, changed: list[StoredJob]) -> None:
    # Class, queue and arguments come from a job's first report and never change afterwards.
    rows = [
        (
            job.status.value,
            job.timeline.queued_at,
            job.timeline.started_at,
            job.timeline.completed_at,
            job.timeline.attempts,
            job.worker,
            job.id,
        )
        for job in changed
    ]
    if rows:
        update_by_key(connection, jobs, TIMELINE_COLUMNS, "id", rows)


def _moves(
    rows: dict[str, StoredJob],
    created: set[str],
    changed: list[StoredJob],
    status_before: dict[str, JobStatus],
) -> Iterator[Move]:
    """The batch's moves between statuses: each new job arrived as queued (the status its row was
    created with), then each changed job went from its status before the batch to its new one."""
    queued = JobStatus.QUEUED
    for jid in created:
        job = rows[jid]
        yield Move(job.job_class, job.queue, None, queued)
    for job in changed:
        yield Move(job.job_class, job.queue, status_before[job.jid], job.status)


def _results(
    reports: Sequence[Report],
    rows: dict[str, StoredJob],
    created: set[str],
    fresh: set[int],
    before: dict[str, Timeline],
) -> list[WriteResult]:
    unannounced = set(created)
    results = []
    for position, report in enumerate(reports):
        jid = report.jid
        results.append(
            WriteResult(jid, rows.get(jid), jid in unannounced, position in fresh, before.get(jid))
        )
        unannounced.discard(jid)
    return results
