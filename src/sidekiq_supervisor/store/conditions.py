"""The ledger reads the alert conditions need beyond the dashboard's (``store.analytics``): how the
runs of the failing classes ended in a window, and when the last report was recorded.

Both stay cheap on a ledger of millions of jobs: the window's events are found from the first id
recorded in it (a bisection of the primary key), failures through the ``(kind, id)`` index, and
completions are counted only for the classes that failed in the window (none, most of the time).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.engine import Connection

from sidekiq_supervisor.domain.alerts import ClassRuns
from sidekiq_supervisor.domain.model import EventKind, Micros
from sidekiq_supervisor.store.analytics import RECORDED_SLACK, first_event_id_recorded_since
from sidekiq_supervisor.store.schema import job_events, jobs


def runs_of_failing_classes(connection: Connection, since: Micros) -> list[ClassRuns]:
    """Per class with a ``failed`` report at or after ``since``, its failed and completed reports
    in that window (reports of jobs restarted since, whose rows left, are not counted)."""
    first_id = first_event_id_recorded_since(connection, since - RECORDED_SLACK)
    if first_id is None:
        return []
    failed = _per_class(connection, EventKind.FAILED, first_id, since, None)
    if not failed:
        return []
    completed = _per_class(connection, EventKind.COMPLETE, first_id, since, sorted(failed))
    return [ClassRuns(name, count, completed.get(name, 0)) for name, count in sorted(failed.items())]


def _per_class(
    connection: Connection, kind: EventKind, first_id: int, since: Micros, classes: list[str] | None
) -> dict[str, int]:
    query = (
        select(jobs.c.job_class, func.count())
        .select_from(job_events.join(jobs, jobs.c.jid == job_events.c.jid))
        .where(job_events.c.kind == kind.value, job_events.c.id >= first_id, job_events.c.at >= since)
        .group_by(jobs.c.job_class)
    )
    if classes is not None:
        query = query.where(jobs.c.job_class.in_(classes))
    return {name: count for name, count in connection.execute(query)}


# What clients report; restarts and quarantines are the service's own events.
REPORTED = (EventKind.QUEUED, EventKind.STARTED, EventKind.COMPLETE, EventKind.FAILED)


def last_recorded_at(connection: Connection) -> Micros | None:
    """When the newest report from a client was recorded, or None when none ever was.

    The newest id of each reported kind is one probe of the ``(kind, id)`` index; the highest of
    them is the newest report (ids grow with recording).
    """
    newest = [
        connection.execute(select(func.max(job_events.c.id)).where(job_events.c.kind == kind.value)).scalar()
        for kind in REPORTED
    ]
    ids = [event_id for event_id in newest if event_id is not None]
    if not ids:
        return None
    at: Micros = connection.execute(
        select(job_events.c.recorded_at).where(job_events.c.id == max(ids))
    ).scalar_one()
    return at
