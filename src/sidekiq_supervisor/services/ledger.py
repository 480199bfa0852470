"""Reads of the ledger for the HTTP API and the JobManager: pages, streams, counts, summaries."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import Engine

from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary
from sidekiq_supervisor.domain.model import JobStatus
from sidekiq_supervisor.store import queries
from sidekiq_supervisor.store.queries import Count, JobFilter
from sidekiq_supervisor.store.records import StoredEvent, StoredJob

__all__ = ["Count", "JobFilter", "Ledger", "Page"]

# How long an exact count may run before PostgreSQL's planner estimate answers instead: the
# answer then stays within a second (the target for reads over ten million jobs).
EXACT_COUNT_BUDGET_MS = 600


@dataclass(frozen=True, slots=True)
class Page:
    """One page of jobs, newest first; ``next_cursor`` fetches the following page, if any."""

    jobs: list[StoredJob]
    next_cursor: int | None


class Ledger:
    """Read access to the ledger behind one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def page(self, flt: JobFilter, *, limit: int, cursor: int | None = None) -> Page:
        """A page of matching jobs older than ``cursor`` (a job id from a previous page)."""
        with self.engine.connect() as connection:
            # One extra row tells whether another page exists without a count.
            rows = queries.page_jobs(connection, flt, limit=limit + 1, before_id=cursor)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more else None)

    def iterate(self, flt: JobFilter, *, page_size: int = 1000) -> Iterator[StoredJob]:
        """Every matching job, newest first; holds one page in memory and no connection between pages."""
        cursor = None
        while True:
            page = self.page(flt, limit=page_size, cursor=cursor)
            yield from page.jobs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def count(self, flt: JobFilter) -> int:
        """The exact number of matching jobs."""
        with self.engine.connect() as connection:
            return queries.count_jobs(connection, flt)

    def estimated_count(self, flt: JobFilter, *, budget_ms: int = EXACT_COUNT_BUDGET_MS) -> Count:
        """The exact count when it takes at most ``budget_ms``, else an estimate marked as one.

        Only PostgreSQL estimates (from its planner's statistics); SQLite always counts.
        """
        with self.engine.connect() as connection:
            return queries.count_or_estimate(connection, flt, budget_ms=budget_ms)

    def get(self, jid: str) -> StoredJob | None:
        """The job with this jid, if known."""
        with self.engine.connect() as connection:
            return queries.find_job(connection, jid)

    def known_jids(self, jids: Iterable[str]) -> frozenset[str]:
        """Which of ``jids`` the ledger knows (a job, or a restarted job's history), in one query."""
        wanted = sorted(set(jids))
        if not wanted:
            return frozenset()
        with self.engine.connect() as connection:
            return queries.known_jids(connection, wanted)

    def history(self, jid: str) -> list[StoredEvent]:
        """The job's reports in event-time order (outlives the job when it is restarted)."""
        with self.engine.connect() as connection:
            return queries.job_history(connection, jid)

    def duration_summary(self, origin: DurationOrigin, flt: JobFilter) -> DurationSummary:
        """Summary of the durations from ``origin`` to completion of the matching jobs."""
        with self.engine.connect() as connection:
            return queries.duration_summary(connection, origin, flt)

    def status_counts(self) -> dict[JobStatus, int]:
        """How many jobs have each status."""
        with self.engine.connect() as connection:
            return queries.status_counts(connection)
