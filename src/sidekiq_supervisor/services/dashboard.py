"""What the dashboard pages show, read from the ledger (and Sidekiq's Redis for where a job is).

Every figure is bounded so that a page load stays fast on a ledger of millions of jobs: status
counts, duration summaries and the chart of events per minute come from what the writer counts as
it stores reports (``store.job_counts``, ``store.rollups``, ``store.event_counts``), lists are
keyset pages. The pages say when a figure is estimated.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

import orjson
from sqlalchemy import Engine

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary, duration_of
from sidekiq_supervisor.domain.histogram import display_bins_of
from sidekiq_supervisor.domain.model import EventKind, JobStatus, datetime_from_micros
from sidekiq_supervisor.domain.recovery import Recovery
from sidekiq_supervisor.domain.rollups import Tally, Window, summed, window_periods
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.ledger import JobFilter
from sidekiq_supervisor.services.liveness import SidekiqUnavailable
from sidekiq_supervisor.services.restart import RestartReport
from sidekiq_supervisor.services.results import Job
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.sidekiq_redis import connection
from sidekiq_supervisor.store import analytics, event_counts, rollups
from sidekiq_supervisor.store.analytics import ClassSummary
from sidekiq_supervisor.store.job_counts import jobs_per_status
from sidekiq_supervisor.store.records import StoredJob

__all__ = ["ClassSummary", "Dashboard", "EventSeries", "HistoryEntry", "JobView", "StatusCounts"]

MAX_CLASSES = 200
# The overview's slowest classes: what ran lately, not since records began.
SLOWEST_WINDOW = Window.DAY


@dataclass(frozen=True, slots=True)
class StatusCounts:
    """Jobs per status, exact; ``newest_id`` bounds how many were ever stored."""

    counts: dict[JobStatus, int]
    newest_id: int


@dataclass(frozen=True, slots=True)
class EventSeries:
    """Events per minute of each kind, over ``minutes`` minutes from ``start``."""

    start: datetime
    minutes: int
    series: dict[str, list[int]]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One report of a job's history, with who ran it, what it raised, or what replaced it."""

    kind: EventKind
    at: datetime
    recorded_at: datetime
    worker: str | None = None
    error_class: str | None = None
    error_message: str | None = None
    new_jid: str | None = None
    # Why automatic recovery pushed it again (a restarted event), or quarantined it.
    recovered: str | None = None


@dataclass(frozen=True, slots=True)
class Whereabouts:
    """Where a job is in Sidekiq now (``state`` is a liveness or ``dead``/``not seen``), or why unknown."""

    state: str | None
    text: str


@dataclass(frozen=True, slots=True)
class JobView:
    """A job page: the job (``None`` once a restart replaced it), its history, links and durations."""

    jid: str
    job: Job | None
    history: list[HistoryEntry]
    replaced_by: str | None
    durations: dict[DurationOrigin, timedelta | None]
    whereabouts: Whereabouts | None


# The restart page previews this many matching jobs, newest first: a page a person can read.
PREVIEW_LIMIT = 1000


class Dashboard:
    """The reads and the restart action behind the dashboard pages."""

    def __init__(self, manager: JobManager) -> None:
        # The restart and liveness use cases are the JobManager's: the pages and the CLI, the
        # console and the API restart and classify jobs through the very same objects.
        self._manager = manager
        self.ledger = manager.ledger
        self._liveness = manager.liveness

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine) -> Dashboard:
        """A dashboard on ``engine`` and the settings' Redis (none when ``REDIS_URL`` is empty)."""
        return cls(JobManager.on(engine, connection.connect(settings.redis_url), settings))

    def status_counts(self) -> StatusCounts:
        """Jobs per status (``store.job_counts``: exact, whatever the ledger's size)."""
        with self.ledger.engine.connect() as connection:
            return StatusCounts(jobs_per_status(connection), analytics.highest_job_id(connection))

    def events(self, hours: int) -> EventSeries:
        """Events per minute of each kind over the last ``hours`` hours."""
        minute = event_counts.MINUTE
        end = (now_micros() // minute + 1) * minute
        start = end - hours * 60 * minute
        with self.ledger.engine.connect() as connection:
            found = event_counts.events_per_minute(connection, start, end)
        minutes = hours * 60
        series = {
            kind.value: [found.get(kind.value, {}).get(start + i * minute, 0) for i in range(minutes)]
            for kind in (EventKind.QUEUED, EventKind.STARTED, EventKind.COMPLETE, EventKind.FAILED)
        }
        return EventSeries(datetime_from_micros(start), minutes, series)  # type: ignore[arg-type]

    def class_summaries(self, origin: DurationOrigin, window: Window = Window.ALL) -> list[ClassSummary]:
        """Per class (the first ``MAX_CLASSES`` by name), the summary of its jobs completed in
        ``window``; classes with none left out."""
        return self.class_summaries_by_origin(window)[origin]

    def class_summaries_by_origin(
        self, window: Window = Window.ALL
    ) -> dict[DurationOrigin, list[ClassSummary]]:
        """Both seed questions per class over the jobs completed in ``window``, from the roll-ups:
        exact counts and means, estimated percentiles (``domain.rollups``)."""
        grain, since = window_periods(window, now_micros())
        with self.ledger.engine.connect() as connection:
            tallies = rollups.class_tallies(connection, grain, since)
        found: dict[DurationOrigin, list[ClassSummary]] = {origin: [] for origin in DurationOrigin}
        for (name, origin), tally in sorted(tallies.items()):
            if tally.count > 0 and len(found[origin]) < MAX_CLASSES:
                found[origin].append(_class_summary(name, tally))
        return found

    def pruned_summaries(self, job_class: str | None = None) -> dict[DurationOrigin, DurationSummary]:
        """Both summaries of the jobs retention pruned (from its roll-ups), by origin."""
        return {origin: self.ledger.pruned_summary(origin, job_class) for origin in DurationOrigin}

    def slowest_classes(self, limit: int = 8) -> list[ClassSummary]:
        """The classes with the highest p95 from started to complete over the last 24 hours."""
        summaries = self.class_summaries(DurationOrigin.STARTED, SLOWEST_WINDOW)
        return sorted(summaries, key=lambda s: s.p95 or 0, reverse=True)[:limit]

    def histogram(
        self, origin: DurationOrigin, job_class: str | None, window: Window = Window.ALL
    ) -> list[tuple[int | None, int]]:
        """(upper edge in micros, count) per shown bin of the durations of the jobs completed in
        ``window`` (``domain.histogram.display_bins_of``)."""
        grain, since = window_periods(window, now_micros())
        with self.ledger.engine.connect() as connection:
            tallies = rollups.class_tallies(connection, grain, since, job_class=job_class, origin=origin)
        return display_bins_of(summed(tallies.values()).histogram)

    def stuck_jobs(self, minutes: float, limit: int = 50) -> list[Job]:
        """Uncompleted jobs started more than ``minutes`` ago, oldest first."""
        cutoff = now_micros() - round(minutes * 60_000_000)
        with self.ledger.engine.connect() as connection:
            return [Job.from_stored(s) for s in analytics.uncompleted_before(connection, cutoff, limit)]

    def page(self, job_filter: JobFilter, *, limit: int, cursor: int | None) -> tuple[list[Job], int | None]:
        """A keyset page of jobs, newest first, and the cursor of the next page."""
        page = self.ledger.page(job_filter, limit=limit, cursor=cursor)
        return [Job.from_stored(stored) for stored in page.jobs], page.next_cursor

    def job_view(self, jid: str) -> JobView | None:
        """The job page's content, or ``None`` when the ledger never heard of ``jid``."""
        stored = self.ledger.get(jid)
        history = [
            _entry(jid, event.kind, event.at, event.recorded_at, event.detail)
            for event in self.ledger.history(jid)
        ]
        if stored is None and not history:
            return None
        replaced_by = next((e.new_jid for e in reversed(history) if e.new_jid), None)
        durations: dict[DurationOrigin, timedelta | None] = dict.fromkeys(DurationOrigin)
        if stored is not None and stored.status is JobStatus.COMPLETE:
            for origin in DurationOrigin:
                micros = duration_of(stored.timeline, origin)
                durations[origin] = None if micros is None else timedelta(microseconds=micros)
        job = None if stored is None else Job.from_stored(stored)
        whereabouts = None if stored is None else self.whereabouts(stored)
        return JobView(jid, job, history, replaced_by, durations, whereabouts)

    def whereabouts(self, stored: StoredJob) -> Whereabouts:
        """Where ``stored`` is in Sidekiq now, by the restarts' liveness rules."""
        try:
            # Reads the processes and the jids of the retry, scheduled and dead sets, as restarts do.
            snapshot = self._liveness.snapshot()
        except SidekiqUnavailable as exc:
            return Whereabouts(None, str(exc))
        if stored.status is JobStatus.STARTED:
            verdict = self._liveness.verdict(stored, snapshot)
            return Whereabouts(verdict.liveness.value, verdict.reason)
        if stored.jid in snapshot.running:
            return Whereabouts("running", f"process {snapshot.running[stored.jid]} is running it")
        if stored.jid in snapshot.retrying:
            return Whereabouts("retrying", "it is in Sidekiq's retry or scheduled set")
        if stored.jid in snapshot.dead:
            return Whereabouts("dead", "it is in Sidekiq's Dead set")
        return Whereabouts("not seen", "no Sidekiq process runs it, and it is in no retry or dead set")

    def restart_preview(
        self, needle: str | None, older_than: timedelta | None, *, limit: int = PREVIEW_LIMIT
    ) -> tuple[RestartReport, bool]:
        """What a restart with this filter would take and skip (and why), for the newest ``limit``
        matching jobs, and whether more match; changes nothing."""
        # One more than shown tells whether more match, in the same read of the ledger.
        outcomes = self._manager.restart_outcomes(
            needle, dry_run=True, older_than=older_than, limit=limit + 1
        )
        report = RestartReport(dry_run=True)
        for outcome in islice(outcomes, limit):
            report.add(outcome)
        return report, next(outcomes, None) is not None

    def restart(
        self, needle: str | None, older_than: timedelta | None, jids: frozenset[str], *, wait: bool = False
    ) -> RestartReport:
        """Restart the previewed jobs (``jids``) that still match and are still restartable."""
        return self._manager.restart_uncompleted_jobs(
            needle, older_than=older_than, wait=wait, only_jids=jids
        )


def _entry(jid: str, kind: EventKind, at: int, recorded_at: int, detail: str | None) -> HistoryEntry:
    data: dict[str, Any] = orjson.loads(detail) if detail else {}
    worker, error = data.get("worker") or {}, data.get("error") or {}
    return HistoryEntry(
        kind,
        datetime_from_micros(at),  # type: ignore[arg-type]
        datetime_from_micros(recorded_at),  # type: ignore[arg-type]
        worker=_worker_text(worker) if isinstance(worker, dict) else None,
        error_class=error.get("class") if isinstance(error, dict) else None,
        error_message=error.get("message") if isinstance(error, dict) else None,
        new_jid=data.get("new_jid") if kind is EventKind.RESTARTED else None,
        recovered=_recovery_note(jid, kind, at, data),
    )


def _recovery_note(jid: str, kind: EventKind, at: int, data: dict[str, Any]) -> str | None:
    if kind is not EventKind.QUARANTINED and not (kind is EventKind.RESTARTED and data.get("recovered")):
        return None
    recovery = Recovery.from_event(jid, kind, at, data)
    if recovery.quarantined:
        return f"quarantined in Sidekiq's Dead set: {recovery.reason}"
    return f"recovered automatically (attempt {recovery.attempt or 1}): {recovery.reason}"


def _worker_text(worker: dict[str, Any]) -> str | None:
    if not worker:
        return None
    name = worker.get("identity") or ":".join(str(worker[k]) for k in ("hostname", "pid") if worker.get(k))
    thread = worker.get("thread")
    return f"{name} (thread {thread})" if thread else str(name) or None


def _class_summary(job_class: str, tally: Tally) -> ClassSummary:
    """A class's summary in microseconds, from its roll-up tally (percentiles estimated)."""
    summary = tally.summary()
    return ClassSummary(
        job_class,
        summary.count,
        tally.total / tally.count,
        _micros(summary.p50),
        _micros(summary.p95),
        _micros(summary.p99),
        tally.longest,
    )


def _micros(value: timedelta | None) -> int | None:
    return None if value is None else value // timedelta(microseconds=1)
