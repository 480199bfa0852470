"""Restart uncompleted jobs: push the job again into Sidekiq, record it as queued, delete the original.

The job is pushed as it was pushed (``services.job_payloads``), with a new jid. Only jobs that no
live Sidekiq process runs, and that Sidekiq will not retry by itself, are restarted (see
``domain.liveness``); the others are skipped with the reason. Each restart runs in one database
transaction around the push: claim the original (compare-and-set), push (at most once per
original, whatever happens: see ``sidekiq_redis.enqueue``), record the replacement, commit. If the
push fails the transaction rolls back and the original stays exactly as it was. A job that cannot
be pushed exactly (its secrets were not kept, say) is skipped with the reason, and the rest go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Protocol

import redis

from sidekiq_supervisor import render
from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.liveness import SidekiqSnapshot
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report
from sidekiq_supervisor.services.job_payloads import PayloadSeal, PayloadUnavailable, restart_payload
from sidekiq_supervisor.services.ledger import JobFilter, Ledger
from sidekiq_supervisor.services.liveness import LivenessChecker, SidekiqUnavailable
from sidekiq_supervisor.services.results import Job
from sidekiq_supervisor.sidekiq_redis.enqueue import new_jid
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.records import StoredJob
from sidekiq_supervisor.store.restarts import claim_original, kept_payload, record_replacement


class Enqueuer(Protocol):
    """Something that pushes a restart into Sidekiq (the Redis adapter, in production)."""

    # The Sidekiq major version configured, for the unit of times when no live process says.
    sidekiq_version: int

    def push_restart(self, *, original_jid: str, jid: str, queue: str, payload: bytes) -> str:
        """Push once per original; return the jid that runs the restart. Raise if it could not."""


class RestartFailed(RuntimeError):
    """Sidekiq's Redis failed; the job being restarted, and those after it, were left as they were."""

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

    def __init__(
        self,
        ledger: Ledger,
        enqueuer: Enqueuer | None,
        liveness: LivenessChecker,
        seal: PayloadSeal | None = None,
    ) -> None:
        self._ledger = ledger
        self._enqueuer = enqueuer
        self._liveness = liveness
        self._seal = seal or PayloadSeal(())

    def restart(
        self, flt: JobFilter, *, dry_run: bool = False, older_than: timedelta | None = None
    ) -> RestartReport:
        """Restart every orphaned or unknown uncompleted job matching ``flt``; skip the others."""
        flt = replace(flt, status=JobStatus.STARTED)
        if older_than is not None:
            flt = replace(flt, started_before=now_micros() - older_than // timedelta(microseconds=1))
        report = RestartReport(dry_run=dry_run)
        try:
            snapshot = self._liveness.snapshot()
        except SidekiqUnavailable as exc:
            raise RestartFailed(str(exc), report) from exc
        for stored in self._ledger.iterate(flt):
            self._consider(stored, snapshot, report)
        return report

    def _consider(self, stored: StoredJob, snapshot: SidekiqSnapshot, report: RestartReport) -> None:
        verdict = self._liveness.verdict(stored, snapshot)
        job = Job.from_stored(stored)
        if not verdict.liveness.restartable:
            report.skipped.append(RestartOutcome(job, None, f"{verdict.liveness}: {verdict.reason}"))
        elif report.dry_run:
            report.restarted.append(RestartOutcome(job, None, f"{verdict.liveness}: {verdict.reason}"))
        else:
            try:
                outcome, done = self._restart_one(stored, job, snapshot.sidekiq_major)
            except redis.RedisError as exc:
                raise RestartFailed(f"Sidekiq's Redis refused the push: {exc}", report) from exc
            (report.restarted if done else report.skipped).append(outcome)

    def _restart_one(
        self, stored: StoredJob, job: Job, sidekiq_major: int | None
    ) -> tuple[RestartOutcome, bool]:
        enqueuer = self._enqueuer
        if enqueuer is None:
            raise SidekiqUnavailable("no Sidekiq Redis is configured for restarts")
        now = now_micros()
        try:
            with write_transaction(self._ledger.engine) as connection:
                if not claim_original(connection, stored):
                    reason = "it changed while restarting (completed, or restarted elsewhere)"
                    return RestartOutcome(job, None, reason), False
                form, kept = kept_payload(connection, stored.jid)
                jid = new_jid()
                payload = restart_payload(
                    job_class=stored.job_class,
                    queue=stored.queue,
                    arguments=stored.arguments,
                    payload_form=form,
                    payload=kept,
                    jid=jid,
                    now=now / 1_000_000,
                    sidekiq_major=sidekiq_major or enqueuer.sidekiq_version,
                    seal=self._seal,
                )
                jid = enqueuer.push_restart(
                    original_jid=stored.jid, jid=jid, queue=stored.queue, payload=payload
                )
                replacement = Report(
                    jid, EventKind.QUEUED, now, stored.job_class, stored.queue, stored.arguments
                )
                record_replacement(connection, stored, replacement, now)
        except PayloadUnavailable as exc:  # raised inside the transaction: the original is untouched
            return RestartOutcome(job, None, f"cannot be pushed as it was: {exc}"), False
        return RestartOutcome(job, jid), True
