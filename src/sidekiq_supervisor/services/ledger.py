"""Reads of the ledger for the HTTP API and the JobManager: pages, streams, counts, summaries."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import orjson
from sqlalchemy import Connection, Engine

from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary
from sidekiq_supervisor.domain.model import JobStatus, Micros
from sidekiq_supervisor.domain.recovery import ClassRecoveries, Recovery, per_class
from sidekiq_supervisor.domain.rollups import Grain
from sidekiq_supervisor.store import estimates, queries
from sidekiq_supervisor.store.estimates import SAMPLING, Sampling
from sidekiq_supervisor.store.job_counts import jobs_per_status
from sidekiq_supervisor.store.queries import Count, JobFilter
from sidekiq_supervisor.store.records import StoredEvent, StoredJob
from sidekiq_supervisor.store.restarts import kept_payload
from sidekiq_supervisor.store.rollups import kept_count, rollup_summary

__all__ = ["Budgets", "Count", "JobFilter", "Ledger", "Page", "Sampling"]


@dataclass(frozen=True, slots=True)
class Budgets:
    """How long an exact count or duration summary of jobs that no kept count or roll-up holds
    (an arguments filter) may run before an estimate answers instead (``store.estimates``)."""

    count_ms: int
    summary_ms: int


# A sample of 15,000 jobs takes 40-100 ms on PostgreSQL, whatever the size of the ledger. The
# rare filters people look up (an id, an email) count exactly in 25-30 ms at three million jobs
# and in 90-120 ms at ten million, and stay exact; a broad one that would take seconds answers
# in about 250 ms (docs/performance.md).
POSTGRESQL_BUDGETS = Budgets(count_ms=150, summary_ms=150)
# SQLite's estimates read a sample of 15,000 jobs (30-50 ms for a count, 45-80 ms for a summary
# at a million jobs), so a budget of 30 ms keeps most answers within 100 ms (docs/performance.md).
SQLITE_BUDGETS = Budgets(count_ms=30, summary_ms=30)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of jobs, newest first; ``next_cursor`` fetches the following page, if any."""

    jobs: list[StoredJob]
    next_cursor: int | None


def _rolled_up(job_filter: JobFilter) -> bool:
    """Whether the roll-ups hold the answer: all completed jobs, or those of a class, a queue, or
    a class on a queue (the roll-ups' key). They keep no arguments to match a needle against,
    and no start to compare with ``started_before``."""
    return (
        job_filter.needle is None
        and job_filter.started_before is None
        and job_filter.status in (None, JobStatus.COMPLETE)
    )


def _counted_by_rollups(job_filter: JobFilter) -> bool:
    """Whether the roll-ups' count is the exact count of the matching jobs by definition.

    A duration list's jobs are those whose status is ``complete`` and whose time of the origin
    is known (``queries._conditions``). The ``all`` roll-ups count each kept job that is complete
    by its timeline, has a completion, and has a duration from that origin, i.e. a known time of
    the origin (``domain.rollups.contributions``). The writer stores the status its timeline
    gives, and a complete timeline has a completion, so the two are the same jobs; the writer and
    retention change the roll-ups in the transactions that change the jobs.
    """
    return job_filter.duration_from is not None and _rolled_up(job_filter)


def storable(text: str) -> bool:
    """Whether a jid can be in the ledger at all: PostgreSQL refuses NUL in text (a lookup with one
    fails as a data error), and ingest refuses it on both databases."""
    return "\x00" not in text


class Ledger:
    """Read access to the ledger behind one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.budgets = SQLITE_BUDGETS if engine.dialect.name == "sqlite" else POSTGRESQL_BUDGETS

    def page(self, job_filter: JobFilter, *, limit: int, cursor: int | None = None) -> Page:
        """A page of matching jobs older than ``cursor`` (a job id from a previous page)."""
        with self.engine.connect() as connection:
            # One extra row tells whether another page exists without a count.
            rows = queries.page_jobs(connection, job_filter, limit=limit + 1, before_id=cursor)
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, rows[-1].id if more else None)

    def iterate(self, job_filter: JobFilter, *, page_size: int = 1000) -> Iterator[StoredJob]:
        """Every matching job, newest first; holds one page in memory and no connection between pages."""
        cursor = None
        while True:
            page = self.page(job_filter, limit=page_size, cursor=cursor)
            yield from page.jobs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def count(self, job_filter: JobFilter) -> int:
        """The exact number of matching jobs (of a duration list with no needle nor
        ``started_before``, read from the roll-ups, which count the same jobs)."""
        with self.engine.connect() as connection:
            if _counted_by_rollups(job_filter):
                return self._rolled_up_count(connection, job_filter)
            return queries.count_jobs(connection, job_filter)

    @staticmethod
    def counts_at_once(job_filter: JobFilter) -> bool:
        """Whether ``count`` reads counts the writer keeps (a few rows), not the matching jobs."""
        return _counted_by_rollups(job_filter) or queries.kept_count_answers(job_filter)

    @staticmethod
    def _rolled_up_count(connection: Connection, job_filter: JobFilter) -> int:
        assert job_filter.duration_from is not None  # _counted_by_rollups said so
        return kept_count(connection, job_filter.duration_from, job_filter.job_class, job_filter.queue)

    def estimated_count(self, job_filter: JobFilter, *, budget_ms: int | None = None) -> Count:
        """The exact count when it takes at most ``budget_ms`` (the engine's ``Budgets`` by
        default), else an estimate marked as one (``store.estimates``), at once when the exact
        count is sure to take longer. A count that the kept counts or the roll-ups hold is exact
        at once (see ``count``).
        """
        budget = self.budgets.count_ms if budget_ms is None else budget_ms
        with self.engine.connect() as connection:
            if _counted_by_rollups(job_filter):
                return Count(self._rolled_up_count(connection, job_filter), estimated=False)
            if not estimates.surely_past(connection, job_filter, budget):
                exact = queries.count_within(connection, job_filter, budget_ms=budget)
                if exact is not None:
                    return Count(exact, estimated=False)
            return estimates.estimated_count(connection, job_filter)

    def get(self, jid: str) -> StoredJob | None:
        """The job with this jid, if known."""
        if not storable(jid):
            return None
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
        if not storable(jid):
            return []
        with self.engine.connect() as connection:
            return queries.job_history(connection, jid)

    def kept_payload(self, jid: str) -> tuple[str | None, str | None]:
        """The form and text of the payload kept for ``jid`` (``(None, None)`` when none was kept)."""
        with self.engine.connect() as connection:
            return kept_payload(connection, jid)

    def recoveries(self, limit: int = 50, needle: str | None = None) -> list[Recovery]:
        """What automatic recovery did, newest first: jobs pushed again and jobs quarantined, those
        whose arguments hold ``needle`` when one is given."""
        with self.engine.connect() as connection:
            found = (r for r in self._recoveries(connection) if r.matches(needle))
            return list(itertools.islice(found, limit))

    def recoveries_per_class(self, since: Micros) -> list[ClassRecoveries]:
        """How many jobs of each class automatic recovery pushed again or quarantined since ``since``."""
        with self.engine.connect() as connection:
            return per_class(itertools.takewhile(lambda r: r.at >= since, self._recoveries(connection)))

    def recoveries_since(self, since: Micros, limit: int = 10_000) -> list[Recovery]:
        """What automatic recovery did since ``since``, newest first (at most ``limit`` acts)."""
        with self.engine.connect() as connection:
            recent = itertools.takewhile(lambda r: r.at >= since, self._recoveries(connection))
            return list(itertools.islice(recent, limit))

    @staticmethod
    def _recoveries(connection: Connection) -> Iterator[Recovery]:
        for event in queries.recovery_events(connection):
            detail = orjson.loads(event.detail) if event.detail else None
            said = detail if isinstance(detail, dict) else {}
            yield Recovery.from_event(event.jid, event.kind, event.at, said)

    def pruned_summary(self, origin: DurationOrigin, job_class: str | None = None) -> DurationSummary:
        """The durations of the completed jobs that retention pruned (their roll-ups): exact count,
        mean and maximum, percentiles estimated from the roll-ups' histogram (at most 19% high)."""
        with self.engine.connect() as connection:
            return rollup_summary(connection, Grain.PRUNED, origin, job_class)

    def duration_summary(
        self,
        origin: DurationOrigin,
        job_filter: JobFilter,
        *,
        budget_ms: int | None = None,
        sampling: Sampling = SAMPLING,
        exact: bool = False,
    ) -> DurationSummary:
        """Summary of the durations from ``origin`` to completion of the matching jobs.

        Of every completed job, or of those of a class, a queue or a class on a queue, it is read
        from the roll-ups the writer keeps (``domain.rollups``) at once, however many jobs there
        are: count and mean exact, percentiles estimated (``percentiles_estimated``), unless
        ``exact``. Otherwise (an arguments filter) exact when it takes at most ``budget_ms`` (the
        engine's ``Budgets`` by default), else estimated from a sample of the jobs and marked
        ``estimated`` (``store.estimates``). A budget of 0, or an exact summary sure to take
        longer, goes straight to the sample.
        """
        if not exact and _rolled_up(job_filter):
            with self.engine.connect() as connection:
                return rollup_summary(connection, Grain.ALL, origin, job_filter.job_class, job_filter.queue)
        budget = self.budgets.summary_ms if budget_ms is None else budget_ms
        with self.engine.connect() as connection:
            if not estimates.surely_past(connection, replace(job_filter, duration_from=origin), budget):
                within = queries.duration_summary_within(connection, origin, job_filter, budget_ms=budget)
                if within is not None:
                    return within
            return estimates.estimated_summary(connection, origin, job_filter, sampling)

    def status_counts(self) -> dict[JobStatus, int]:
        """How many jobs have each status."""
        with self.engine.connect() as connection:
            return jobs_per_status(connection)
