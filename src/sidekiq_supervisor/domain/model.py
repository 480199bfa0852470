"""The ledger's vocabulary: reports that clients send and the job state folded from them.

Times are integer microseconds since the Unix epoch (``Micros``) everywhere below the HTTP and
console edges: exact, totally ordered, cheap to compare in SQL, and the same on SQLite and
PostgreSQL. The edges convert to aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

Micros = int


class EventKind(StrEnum):
    """What happened to a job: the seed's three reports, a failure, and the ledger's own restart."""

    QUEUED = "queued"
    STARTED = "started"
    COMPLETE = "complete"
    # The run raised; Sidekiq retries it or not, and the job stays uncompleted, as the seed has it.
    FAILED = "failed"
    # Written by a restart: the job was queued again under a new jid and left the ledger.
    RESTARTED = "restarted"
    # Written by automatic recovery: lost too often, the job went to Sidekiq's Dead set instead.
    QUARANTINED = "quarantined"


class JobStatus(StrEnum):
    """A job's current status, named as in the seed."""

    QUEUED = "queued"
    STARTED = "started"
    COMPLETE = "complete"


class Selection(StrEnum):
    """Which jobs a list shows: the seed's four lists (``SEED_LISTS``), and the status names
    ``started`` and ``complete`` as aliases of two of them."""

    QUEUED = "queued"
    UNCOMPLETED = "uncompleted"
    COMPLETED = "completed"
    ALL = "all"
    STARTED = "started"
    COMPLETE = "complete"

    @property
    def status(self) -> JobStatus | None:
        """The status the list holds, or None for every job."""
        return _SELECTED_STATUS[self]


SEED_LISTS = (Selection.QUEUED, Selection.UNCOMPLETED, Selection.COMPLETED, Selection.ALL)
_SELECTED_STATUS = {
    Selection.QUEUED: JobStatus.QUEUED,
    Selection.UNCOMPLETED: JobStatus.STARTED,
    Selection.STARTED: JobStatus.STARTED,
    Selection.COMPLETED: JobStatus.COMPLETE,
    Selection.COMPLETE: JobStatus.COMPLETE,
    Selection.ALL: None,
}


@dataclass(frozen=True, slots=True)
class Report:
    """One validated report from a client: an event for a job, with the job's description.

    ``arguments`` is canonical JSON text (compact, raw UTF-8) of a JSON array. ``worker`` is
    JSON text of the Sidekiq process and thread that started the job (``started`` reports);
    ``error`` is JSON text of the class and message a run raised (``failed`` reports).
    ``payload_form`` and ``payload`` are what a restart needs beyond class, queue and arguments
    (see ``domain.payload``); ``None`` when there is nothing more.
    """

    jid: str
    kind: EventKind
    at: Micros
    job_class: str
    queue: str
    arguments: str
    worker: str | None = None
    error: str | None = None
    payload_form: str | None = None
    payload: str | None = None


@dataclass(frozen=True, slots=True)
class Timeline:
    """The times that decide a job's status, each an order-independent summary of its events.

    ``queued_at`` is the earliest queued report, ``started_at`` the latest start, ``completed_at``
    the latest completion and ``attempts`` the number of distinct starts.
    """

    queued_at: Micros | None = None
    started_at: Micros | None = None
    completed_at: Micros | None = None
    attempts: int = 0


def micros_from_seconds(seconds: float) -> Micros:
    """Epoch seconds (as clients send them) to epoch microseconds."""
    return round(seconds * 1_000_000)


def datetime_from_micros(micros: Micros | None) -> datetime | None:
    """Epoch microseconds to an aware UTC datetime; ``None`` stays ``None``."""
    if micros is None:
        return None
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)


def iso_from_micros(micros: Micros | None) -> str | None:
    """Epoch microseconds in ISO 8601 UTC, for scripts; ``None`` stays ``None``."""
    moment = datetime_from_micros(micros)
    return None if moment is None else moment.isoformat()


def micros_from_datetime(moment: datetime) -> Micros:
    """An aware datetime to epoch microseconds (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
