"""The seed's JobManager: every question about jobs, for the console, the CLI and the HTTP API.

Every question takes the seed's optional filter string (a case-insensitive substring of the job's
arguments) and returns a lazy :class:`~sidekiq_supervisor.services.results.JobList`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import redis
from sqlalchemy import Engine

from sidekiq_supervisor.apps import load_apps
from sidekiq_supervisor.domain.durations import DurationOrigin
from sidekiq_supervisor.domain.filters import normalize_filter
from sidekiq_supervisor.domain.liveness import SidekiqSnapshot, Verdict
from sidekiq_supervisor.domain.model import JobStatus, micros_from_seconds
from sidekiq_supervisor.domain.recovery import ClassRecoveries, Recovery, exclusion, recoverable
from sidekiq_supervisor.services.app_ledgers import choose_app, open_app_ledger
from sidekiq_supervisor.services.job_payloads import PayloadSeal, kept_keys
from sidekiq_supervisor.services.ledger import JobFilter, Ledger
from sidekiq_supervisor.services.liveness import LivenessChecker, LivenessPage, LivenessReport
from sidekiq_supervisor.services.restart import Enqueuer, Restarter, RestartOutcome, RestartReport
from sidekiq_supervisor.services.results import DurationList, Job, JobList
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.sidekiq_redis import connection
from sidekiq_supervisor.sidekiq_redis.enqueue import SidekiqEnqueuer
from sidekiq_supervisor.sidekiq_redis.snapshot import SidekiqReader
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import require_head
from sidekiq_supervisor.store.records import StoredJob


class JobManager:
    """Questions and the restart action over one ledger (and one Sidekiq Redis for restarts)."""

    def __init__(
        self,
        engine: Engine,
        enqueuer: Enqueuer | None = None,
        reader: SidekiqReader | None = None,
        *,
        stale_after: float = 60.0,
        seal: PayloadSeal | None = None,
    ) -> None:
        self.ledger = Ledger(engine)
        self._seal = seal or PayloadSeal(())
        self.liveness = LivenessChecker(reader, stale_after=stale_after)
        self._restarter = Restarter(self.ledger, enqueuer, self.liveness, self._seal)

    @classmethod
    def from_settings(cls, settings: Settings, engine: Engine | None = None) -> JobManager:
        """A manager on the settings' Sidekiq Redis and ``engine``.

        Without ``engine``, it opens the settings' database, whose schema must be at head
        (``SchemaNotCurrent`` says to run ``sidekiq-supervisor db upgrade`` otherwise).
        """
        if engine is None:
            engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
            require_head(engine)
        return cls.on(engine, connection.connect(settings.redis_url), settings)

    @classmethod
    def on(cls, engine: Engine, client: redis.Redis | None, settings: Settings) -> JobManager:
        """A manager on ``engine`` and Sidekiq's Redis ``client`` (None: none configured)."""
        return cls(
            engine,
            None if client is None else SidekiqEnqueuer(client, sidekiq_version=settings.sidekiq_version),
            None if client is None else SidekiqReader(client),
            stale_after=settings.process_stale_seconds,
            seal=PayloadSeal(settings.secret_keys),
        )

    @classmethod
    def from_environment(cls) -> JobManager:
        """The default app's manager, configured from the environment (``DATABASE_URL``,
        ``REDIS_URL``, ... and the apps of ``SUPERVISOR_CONFIG``, whose first app is the default)."""
        return cls.for_app()

    @classmethod
    def for_app(
        cls, name: str | None = None, *, settings: Settings | None = None, config: str | Path | None = None
    ) -> JobManager:
        """The manager of the app ``name`` (None: the default app) on its own ledger and Redis.

        The apps are those of ``config`` (else ``SUPERVISOR_CONFIG``; without either, the one app
        ``default``), over ``settings`` (else the environment's). Raises ``app_ledgers.UnknownApp``
        (a ``KeyError`` naming the apps there are), ``ConfigError`` for a bad file,
        ``SchemaNotCurrent`` before ``db upgrade``, ``LedgerOfAnotherApp`` for another app's ledger.
        """
        apps = load_apps(settings if settings is not None else Settings(), config)
        app = choose_app(apps, name)
        return cls.from_settings(app.settings, open_app_ledger(apps, app))

    def _jobs(
        self,
        status: JobStatus | None,
        filter: str | None,
        job_class: str | None,
        queue: str | None,
        title: str,
    ) -> JobList:
        job_filter = JobFilter(
            status=status, needle=normalize_filter(filter), job_class=job_class, queue=queue
        )
        return JobList(self.ledger, job_filter, _titled(title, filter))

    def queued_jobs(
        self, filter: str | None = None, *, job_class: str | None = None, queue: str | None = None
    ) -> JobList:
        """Jobs whose most recent status is ``queued``."""
        return self._jobs(JobStatus.QUEUED, filter, job_class, queue, "queued jobs")

    def uncompleted_jobs(
        self, filter: str | None = None, *, job_class: str | None = None, queue: str | None = None
    ) -> JobList:
        """Jobs whose most recent status is ``started``: started, never completed."""
        return self._jobs(JobStatus.STARTED, filter, job_class, queue, "uncompleted jobs")

    def completed_jobs(
        self, filter: str | None = None, *, job_class: str | None = None, queue: str | None = None
    ) -> JobList:
        """Jobs whose most recent status is ``complete``."""
        return self._jobs(JobStatus.COMPLETE, filter, job_class, queue, "completed jobs")

    def all_jobs(
        self, filter: str | None = None, *, job_class: str | None = None, queue: str | None = None
    ) -> JobList:
        """Every job, whatever its status."""
        return self._jobs(None, filter, job_class, queue, "all jobs")

    # The seed's console spelling.
    all = all_jobs

    def _durations(
        self, origin: DurationOrigin, filter: str | None, job_class: str | None, queue: str | None, title: str
    ) -> DurationList:
        job_filter = JobFilter(needle=normalize_filter(filter), job_class=job_class, queue=queue)
        return DurationList(self.ledger, job_filter, _titled(title, filter), origin)

    def queued_to_completion_duration(
        self, filter: str | None = None, *, job_class: str | None = None, queue: str | None = None
    ) -> DurationList:
        """Completed jobs with how long each took from queued to completed."""
        return self._durations(DurationOrigin.QUEUED, filter, job_class, queue, "queued → complete")

    def completed_jobs_duration(
        self, filter: str | None = None, *, job_class: str | None = None, queue: str | None = None
    ) -> DurationList:
        """Completed jobs with how long each took from started to completed."""
        return self._durations(DurationOrigin.STARTED, filter, job_class, queue, "started → complete")

    def restart_uncompleted_jobs(
        self,
        filter: str | None = None,
        *,
        dry_run: bool = False,
        older_than: timedelta | None = None,
        wait: bool = False,
        only_jids: frozenset[str] | None = None,
    ) -> RestartReport:
        """Queue uncompleted jobs again in Sidekiq and delete the originals from the ledger.

        Each job is pushed as it was pushed, under a new jid, and recorded as queued with
        ``restarted_from`` naming the original, whose history stays readable. ``dry_run`` lists
        what would be restarted and changes nothing. ``wait`` decides a job whose process may
        still be alive once that process is taken for gone, instead of skipping it.
        ``only_jids`` keeps to those jobs (a confirmed preview's).
        """
        job_filter = JobFilter(needle=normalize_filter(filter))
        return self._restarter.restart(
            job_filter, dry_run=dry_run, older_than=older_than, wait=wait, only=only_jids
        )

    def restart_outcomes(
        self,
        filter: str | None = None,
        *,
        dry_run: bool = False,
        older_than: timedelta | None = None,
        wait: bool = False,
        limit: int | None = None,
    ) -> Iterator[RestartOutcome]:
        """``restart_uncompleted_jobs`` as a stream of outcomes, for restarts of any size; of the
        newest ``limit`` matching jobs alone, when given."""
        job_filter = JobFilter(needle=normalize_filter(filter))
        return self._restarter.outcomes(
            job_filter, dry_run=dry_run, older_than=older_than, wait=wait, limit=limit
        )

    def recover_lost_jobs(
        self,
        *,
        unknown_after: float | None = None,
        max_attempts: int = 3,
        queue: str | None = None,
        exclude: tuple[str, ...] = (),
    ) -> list[RestartOutcome]:
        """Automatic recovery's pass: push again, exactly as they were pushed (into ``queue`` when
        given), the uncompleted jobs lost on definite evidence (``domain.recovery``), but those
        ``exclude`` or their own options keep out; one lost more than ``max_attempts`` times goes to
        Sidekiq's Dead set instead. The outcomes of the jobs it acted on."""

        def rule(stored: StoredJob, verdict: Verdict, snapshot: SidekiqSnapshot) -> str | None:
            started = stored.timeline.started_at
            started_at = None if started is None else started / 1_000_000
            why = recoverable(stored.jid, started_at, verdict, snapshot, unknown_after=unknown_after)
            if why is None:
                return None
            keys = kept_keys(*self.ledger.kept_payload(stored.jid), self._seal)
            return None if exclusion(stored.job_class, keys, exclude) else why

        outcomes = self._restarter.outcomes(
            JobFilter(), recover=rule, max_attempts=max_attempts, recover_queue=queue
        )
        return list(outcomes)

    def recoveries(self, filter: str | None = None, limit: int = 50) -> list[Recovery]:
        """What automatic recovery did (``SUPERVISOR_AUTO_RECOVER``), newest first: jobs pushed
        again and jobs quarantined, those with ``filter`` in their arguments when one is given."""
        return self.ledger.recoveries(limit, normalize_filter(filter))

    def recoveries_per_class(self, hours: float = 24) -> list[ClassRecoveries]:
        """How many jobs of each class automatic recovery pushed again or quarantined in the last
        ``hours``, the most affected class first."""
        return self.ledger.recoveries_per_class(micros_from_seconds(time.time() - hours * 3600))

    def uncompleted_jobs_liveness(self, filter: str | None = None) -> LivenessReport:
        """Each uncompleted job with where it stands in Sidekiq: running, retrying, orphaned or
        unknown, and why. Restarts take the orphaned and unknown ones."""
        job_filter = JobFilter(status=JobStatus.STARTED, needle=normalize_filter(filter))
        return LivenessReport(self.liveness.classify_all(self.ledger.iterate(job_filter)))

    def uncompleted_jobs_liveness_page(
        self, filter: str | None = None, *, limit: int = 50, cursor: int | None = None
    ) -> LivenessPage:
        """One page of :meth:`uncompleted_jobs_liveness`, newest first: ``limit`` jobs older than
        ``cursor`` (the ``next_cursor`` of the page before). Classifying every uncompleted job
        against Redis takes seconds at tens of thousands of them; a page takes milliseconds."""
        job_filter = JobFilter(status=JobStatus.STARTED, needle=normalize_filter(filter))
        page = self.ledger.page(job_filter, limit=limit, cursor=cursor)
        return LivenessPage(LivenessReport(self.liveness.classify_all(page.jobs)), page.next_cursor)

    def job(self, jid: str) -> Job | None:
        """One job by its Sidekiq jid, or ``None``."""
        stored = self.ledger.get(jid)
        return None if stored is None else Job.from_stored(stored)


def _titled(title: str, filter: str | None) -> str:
    return f"{title} matching {filter!r}" if filter else title
