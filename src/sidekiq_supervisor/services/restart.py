"""Restart uncompleted jobs: push a copy into Sidekiq, record it as queued, delete the original.

Each job is restarted in its own database transaction that holds the ledger's write lock while
the job is pushed to Redis: the original row is claimed with a compare-and-set delete first (so a
job that completed meanwhile is left alone), and if the push fails the transaction rolls back and
the original stays exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

import orjson
import redis

from sidekiq_supervisor import render
from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report
from sidekiq_supervisor.services.ledger import JobFilter, Ledger
from sidekiq_supervisor.services.results import Job
from sidekiq_supervisor.sidekiq_redis.enqueue import new_jid
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.queries import replace_restarted
from sidekiq_supervisor.store.records import StoredJob


class Enqueuer(Protocol):
    """Something that pushes a job into Sidekiq (the Redis adapter, in production)."""

    def enqueue(self, *, jid: str, job_class: str, arguments: list[Any], queue: str, now: float) -> None:
        """Push the job so that a Sidekiq server runs it; raise if it could not."""


class RestartFailed(RuntimeError):
    """Sidekiq's Redis refused a push; the job being restarted was left as it was."""

    def __init__(self, message: str, report: RestartReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, slots=True)
class RestartOutcome:
    """What happened to one uncompleted job."""

    original: Job
    new_jid: str | None
    reason: str | None = None


@dataclass
class RestartReport:
    """Restarted (or, on a dry run, to be restarted) and skipped jobs."""

    dry_run: bool
    restarted: list[RestartOutcome] = field(default_factory=list)
    skipped: list[RestartOutcome] = field(default_factory=list)

    def __rich__(self) -> Any:
        verb = "would restart" if self.dry_run else "restarted"
        return render.restart_table(self, verb)

    def __repr__(self) -> str:
        return render.to_text(self)


class Restarter:
    """Runs restarts against one ledger and one Sidekiq."""

    def __init__(self, ledger: Ledger, enqueuer: Enqueuer | None) -> None:
        self._ledger = ledger
        self._enqueuer = enqueuer

    def restart(
        self, flt: JobFilter, *, dry_run: bool = False, older_than: timedelta | None = None
    ) -> RestartReport:
        """Restart every uncompleted job that matches ``flt`` (and started before ``older_than`` ago)."""
        flt = replace(flt, status=JobStatus.STARTED)
        if older_than is not None:
            flt = replace(flt, started_before=now_micros() - older_than // timedelta(microseconds=1))
        report = RestartReport(dry_run=dry_run)
        self._restart_all(self._ledger.iterate(flt), report)
        return report

    def _restart_all(self, candidates: Iterable[StoredJob], report: RestartReport) -> None:
        for stored in candidates:
            if report.dry_run:
                report.restarted.append(RestartOutcome(Job.from_stored(stored), None))
                continue
            try:
                outcome, done = self._restart_one(stored)
            except redis.RedisError as exc:
                raise RestartFailed(f"Sidekiq's Redis refused the push: {exc}", report) from exc
            (report.restarted if done else report.skipped).append(outcome)

    def _restart_one(self, stored: StoredJob) -> tuple[RestartOutcome, bool]:
        if self._enqueuer is None:
            raise RuntimeError("no Sidekiq Redis is configured for restarts")
        now = now_micros()
        replacement = Report(
            new_jid(), EventKind.QUEUED, now, stored.job_class, stored.queue, stored.arguments
        )
        with write_transaction(self._ledger.engine) as connection:
            if not replace_restarted(connection, stored, replacement, now):
                reason = "it changed while restarting (completed, or restarted elsewhere)"
                return RestartOutcome(Job.from_stored(stored), None, reason), False
            self._enqueuer.enqueue(
                jid=replacement.jid,
                job_class=stored.job_class,
                arguments=orjson.loads(stored.arguments),
                queue=stored.queue,
                now=now / 1_000_000,
            )
        return RestartOutcome(Job.from_stored(stored), replacement.jid), True
