"""What JobManager questions return: lazy, streaming result sets that print as tables.

A result set runs no query until it is used. Iterating streams the whole answer a page at a
time; ``len()`` is an exact SQL count, ``estimated_count()`` a fast one that may be an estimate
(and says so); printing one shows the newest rows, the total (marked when estimated), and a note
when the table is truncated. Nothing ever loads a whole table into memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sidekiq_supervisor import render
from sidekiq_supervisor.domain import json_text
from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary, duration_of
from sidekiq_supervisor.domain.model import JobStatus, datetime_from_micros
from sidekiq_supervisor.services.ledger import Count, JobFilter, Ledger
from sidekiq_supervisor.store.records import StoredJob

PREVIEW_ROWS = 20
NEGATIVE_INDEX = "negative indexes would need the whole answer; count from the newest job (0) instead"


@dataclass(frozen=True, slots=True)
class Job:
    """A job as the console shows it: decoded arguments, aware UTC datetimes."""

    jid: str
    job_class: str
    queue: str
    arguments: Any
    status: JobStatus
    queued_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    attempts: int
    restarted_from: str | None

    @classmethod
    def from_stored(cls, stored: StoredJob) -> Job:
        """The console view of a ledger row."""
        timeline = stored.timeline
        return cls(
            jid=stored.jid,
            job_class=stored.job_class,
            queue=stored.queue,
            arguments=_decoded(stored.arguments),
            status=stored.status,
            queued_at=datetime_from_micros(timeline.queued_at),
            started_at=datetime_from_micros(timeline.started_at),
            completed_at=datetime_from_micros(timeline.completed_at),
            attempts=timeline.attempts,
            restarted_from=stored.restarted_from,
        )


def _decoded(arguments: str) -> Any:
    """Stored arguments as values (integers exact); text too deep to read stays text."""
    try:
        return json_text.loads(arguments)
    except json_text.InvalidJSON:
        return arguments


@dataclass(frozen=True, slots=True)
class JobDuration(Job):
    """A completed job with how long it took from the question's origin to completion."""

    duration: timedelta

    @classmethod
    def from_stored_with_origin(cls, stored: StoredJob, origin: DurationOrigin) -> JobDuration:
        """The console view of a completed row, with its duration from ``origin``."""
        micros = duration_of(stored.timeline, origin)
        job = Job.from_stored(stored)
        values = {field.name: getattr(job, field.name) for field in fields(Job)}
        return cls(**values, duration=timedelta(microseconds=micros or 0))


class JobList:
    """The answer to a job question: iterate it, count it, slice it, or print it."""

    def __init__(self, ledger: Ledger, job_filter: JobFilter, title: str) -> None:
        self._ledger = ledger
        self.filter = job_filter
        self.title = title

    def _convert(self, stored: StoredJob) -> Job:
        return Job.from_stored(stored)

    def __iter__(self) -> Iterator[Job]:
        return (self._convert(stored) for stored in self._ledger.iterate(self.filter))

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            if any(bound is not None and bound < 0 for bound in (index.start, index.stop, index.step)):
                raise IndexError(NEGATIVE_INDEX)
            return JobRows(islice(iter(self), index.start, index.stop, index.step), title=self.title)
        if index < 0:
            raise IndexError(NEGATIVE_INDEX)
        rows = self.first(index + 1)
        if index >= len(rows):
            raise IndexError("job index out of range")
        return rows[index]

    def count(self) -> int:
        """The exact number of jobs in the answer."""
        return self._ledger.count(self.filter)

    def estimated_count(self) -> Count:
        """The number of jobs in the answer: exact, or an estimate from a sample of the jobs when
        counting would take longer than its budget (``estimated`` says which; ``Ledger``)."""
        return self._ledger.estimated_count(self.filter)

    def first(self, limit: int = PREVIEW_ROWS) -> JobRows:
        """The newest ``limit`` jobs of the answer (a list that prints as a table)."""
        page = self._ledger.page(self.filter, limit=limit)
        return JobRows((self._convert(stored) for stored in page.jobs), title=self.title)

    def __rich__(self) -> Any:
        rows = self.first(PREVIEW_ROWS)
        if len(rows) < PREVIEW_ROWS:
            return render.job_table(rows, title=self.title, total=len(rows))
        # Printing must stay quick over millions of jobs: an estimated total says so in the title.
        total = self.estimated_count()
        title = f"{self.title} (total estimated)" if total.estimated else self.title
        return render.job_table(rows, title=title, total=total.value)

    def __repr__(self) -> str:
        return render.to_text(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        # IPython's display hook.
        printer.text(repr(self))


class JobRows(list[Job]):
    """Jobs fetched from an answer (``first(n)``, a slice): a list that prints as a table."""

    def __init__(self, jobs: Iterable[Job] = (), *, title: str = "jobs") -> None:
        super().__init__(jobs)
        self.title = title

    def __rich__(self) -> Any:
        return render.job_table(self, title=self.title, total=len(self))

    def __repr__(self) -> str:
        return render.to_text(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class PrintedSummary(DurationSummary):
    """A duration summary that prints as a table in consoles (its fields are the summary's)."""

    __slots__ = ()

    @classmethod
    def of(cls, summary: DurationSummary) -> PrintedSummary:
        """The same figures, printable."""
        return cls(**{field.name: getattr(summary, field.name) for field in fields(DurationSummary)})

    def __eq__(self, other: object) -> bool:
        # Equal to the plain summary of the same figures (dataclass equality wants one class).
        if not isinstance(other, DurationSummary):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(DurationSummary))

    __hash__ = DurationSummary.__hash__

    def __rich__(self) -> Any:
        return render.summary_table(self)

    def __repr__(self) -> str:
        return render.to_text(self)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))


class DurationList(JobList):
    """Completed jobs with their durations, plus a ``summary()`` of them all."""

    def __init__(self, ledger: Ledger, job_filter: JobFilter, title: str, origin: DurationOrigin) -> None:
        super().__init__(ledger, replace(job_filter, duration_from=origin), title)
        self.origin = origin

    def _convert(self, stored: StoredJob) -> JobDuration:
        return JobDuration.from_stored_with_origin(stored, self.origin)

    def summary(self, *, exact: bool = False) -> PrintedSummary:
        """Count, mean, p50, p95, p99 and max over every job in the answer.

        Without an arguments filter (all completed jobs, or those of a class, a queue or both), at
        once from the roll-ups: count and mean exact, percentiles estimated
        (``percentiles_estimated``), unless ``exact``. Otherwise exact, or when the exact figures
        would take longer than their budget (150 ms on PostgreSQL, 30 ms on SQLite), an estimate
        from a sample of the jobs (``estimated`` says which).
        """
        return PrintedSummary.of(self._ledger.duration_summary(self.origin, self.filter, exact=exact))

    def __rich__(self) -> Any:
        return render.stacked(super().__rich__(), render.summary_table(self.summary()))
