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

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from itertools import islice
from typing import Any, Protocol

import redis
from sqlalchemy.engine import Connection

from sidekiq_supervisor import render
from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.job_counts import Move, count_changes
from sidekiq_supervisor.domain.liveness import SidekiqSnapshot, Verdict
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Micros, Report
from sidekiq_supervisor.domain.payload import dead_payload
from sidekiq_supervisor.domain.recovery import quarantine_reason
from sidekiq_supervisor.services.job_payloads import PayloadSeal, PayloadUnavailable, restart_payload
from sidekiq_supervisor.services.ledger import JobFilter, Ledger
from sidekiq_supervisor.services.liveness import NOT_CONFIGURED, LivenessChecker, SidekiqUnavailable
from sidekiq_supervisor.services.results import Job
from sidekiq_supervisor.sidekiq_redis.enqueue import Push, new_jid
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.job_counts import apply_count_changes
from sidekiq_supervisor.store.records import StoredJob
from sidekiq_supervisor.store.restarts import (
    claim_original,
    kept_payload,
    kept_payloads,
    record_quarantine,
    record_replacement,
    recovery_attempt,
)


class Enqueuer(Protocol):
    """Something that pushes a restart into Sidekiq (the Redis adapter, in production)."""

    # The Sidekiq major version configured, for the unit of times when no live process says.
    sidekiq_version: int

    def push_all(self, pushes: Sequence[Push]) -> list[str]:
        """Push each (or bury each quarantine) at most once per original, in one round trip; the
        jid that runs each. Raise if Redis failed (those done are marked: a re-run gets them)."""


class RestartFailed(RuntimeError):
    """Sidekiq's Redis failed; the job being restarted, and those after it, were left as they were."""

    def __init__(self, message: str, report: RestartReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, slots=True)
class RestartOutcome:
    """What happened to one uncompleted job: taken (restarted, or on a dry run to be) or skipped."""

    original: Job
    new_jid: str | None
    reason: str | None = None
    taken: bool = True
    # Skipped because its process may still be alive: the seconds until that is decided.
    settles_in: float | None = None
    # Automatic recovery sent it to Sidekiq's Dead set instead of pushing it (a poison pill).
    quarantined: bool = False

    @property
    def kind(self) -> str:
        """``restarted`` (or, on a dry run, to be) or ``skipped``."""
        return "restarted" if self.taken else "skipped"

    def document(self) -> dict[str, Any]:
        """The outcome for scripts: the jid, the new jid (restarted) and the reason."""
        if self.taken:
            return {"jid": self.original.jid, "new_jid": self.new_jid, "reason": self.reason}
        return {"jid": self.original.jid, "reason": self.reason}


def outcome_lines(outcomes: Iterable[RestartOutcome], dry_run: bool) -> Iterator[dict[str, Any]]:
    """A restart as a stream for scripts: a document per job as it is decided, then the counts, or
    the error that stopped the restart (the jobs listed before it were restarted)."""
    counts = {"restarted": 0, "skipped": 0}
    try:
        for outcome in outcomes:
            counts[outcome.kind] += 1
            yield {"outcome": outcome.kind, **outcome.document()}
    except RestartFailed as exc:
        yield {"error": str(exc), "dry_run": dry_run, "counts": counts}
        return
    yield {"done": True, "dry_run": dry_run, "counts": counts}


@dataclass
class RestartReport:
    """Restarted (or, on a dry run, to be restarted) and skipped jobs."""

    dry_run: bool
    restarted: list[RestartOutcome] = field(default_factory=list)
    skipped: list[RestartOutcome] = field(default_factory=list)

    def add(self, outcome: RestartOutcome) -> None:
        """File ``outcome`` under restarted or skipped."""
        (self.restarted if outcome.taken else self.skipped).append(outcome)

    def __rich__(self) -> Any:
        verb = "would restart" if self.dry_run else "restarted"
        return render.restart_table(self, verb)

    def __repr__(self) -> str:
        return render.to_text(self)


# The unit of times when neither a live process nor an enqueuer says (as Settings.sidekiq_version).
DEFAULT_SIDEKIQ_MAJOR = 7
# Beyond the moment a process is taken for gone: a margin for the clocks of Redis and this host.
WAIT_MARGIN_SECONDS = 1.0


# Automatic recovery pushes what a pass finds in batches of this many: a transaction and a round
# trip to Redis each. A job at a time, 10,000 lost at once took over a minute to push.
PUSH_BATCH = 100
# A dry run reads the kept payloads of this many jobs in one query: a connection and a query per
# job made the Restart page's preview of 1,000 jobs take 180 ms, and batches of 50 (a connection
# checked out and pinged each) took 2-10 ms more than these at three million jobs. A preview
# reads no job past its limit, so a larger batch reads nothing more.
DRY_RUN_BATCH = 250
# The jid a dry run builds each payload with, to tell whether it can be pushed as it was: a
# fresh one per job was 8% of a preview's time in a profile, and nothing is pushed.
DRY_RUN_JID = "0" * 24


@dataclass(frozen=True, slots=True)
class _Planned:
    """A restart under way: its original claimed, its push built, not yet pushed."""

    stored: StoredJob
    job: Job
    recovered: str | None
    attempt: int
    poison: str | None  # why it is quarantined instead of pushed
    queue: str  # where it goes (unless quarantined)
    push: Push
    index: int = 0  # its place in the batch


# Automatic recovery's rule: why a job is recovered now, or None to leave it (domain.recovery).
Recovery = Callable[[StoredJob, Verdict, SidekiqSnapshot], str | None]


class Restarter:
    """Runs restarts against one ledger and one Sidekiq."""

    def __init__(
        self,
        ledger: Ledger,
        enqueuer: Enqueuer | None,
        liveness: LivenessChecker,
        seal: PayloadSeal | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._ledger = ledger
        self._enqueuer = enqueuer
        self._liveness = liveness
        self._seal = seal or PayloadSeal(())
        self._sleep = sleep

    def restart(
        self,
        job_filter: JobFilter,
        *,
        dry_run: bool = False,
        older_than: timedelta | None = None,
        wait: bool = False,
        only: frozenset[str] | None = None,
    ) -> RestartReport:
        """Restart every orphaned or unknown uncompleted job matching ``job_filter`` (and among the jids
        ``only``, when given: what a confirmed preview showed); skip the others.

        A ``RestartFailed`` carries the report of what was done before Sidekiq's Redis failed.
        """
        report = RestartReport(dry_run=dry_run)
        try:
            for outcome in self.outcomes(
                job_filter, dry_run=dry_run, older_than=older_than, wait=wait, only=only
            ):
                report.add(outcome)
        except RestartFailed as exc:
            exc.report = report
            raise
        return report

    def outcomes(
        self,
        job_filter: JobFilter,
        *,
        dry_run: bool = False,
        older_than: timedelta | None = None,
        wait: bool = False,
        only: frozenset[str] | None = None,
        recover: Recovery | None = None,
        max_attempts: int = 3,
        recover_queue: str | None = None,
        limit: int | None = None,
    ) -> Iterator[RestartOutcome]:
        """Each matching uncompleted job's outcome (among ``only``, when given), as it happens (a
        stream: 100,000 jobs or more); of the newest ``limit`` alone, when given.

        With ``wait`` (never on a dry run), a job whose process may still be alive is decided once
        that process would be taken for gone (``SUPERVISOR_PROCESS_STALE_SECONDS`` after its last
        heartbeat), instead of being skipped now. Raises ``RestartFailed`` if Sidekiq's Redis fails.
        """
        job_filter = replace(job_filter, status=JobStatus.STARTED)
        if older_than is not None:
            job_filter = replace(
                job_filter, started_before=now_micros() - older_than // timedelta(microseconds=1)
            )
        snapshot = self._snapshot()
        undecided: list[tuple[StoredJob, float]] = []
        lost: list[tuple[StoredJob, str | None]] = []
        dry: list[tuple[StoredJob, Verdict]] = []
        # A limited run (a preview) reads its jobs in one page, the look past the last shown included.
        matching = (
            self._ledger.iterate(job_filter)
            if limit is None
            else islice(self._ledger.iterate(job_filter, page_size=max(1, limit)), limit)
        )
        for stored in matching:
            if only is not None and stored.jid not in only:
                continue
            verdict = self._liveness.verdict(stored, snapshot)
            if recover is not None:  # automatic recovery: definite evidence only, nothing else listed
                why = recover(stored, verdict, snapshot)
                if why is not None:
                    lost.append((stored, why))
                if len(lost) == PUSH_BATCH:
                    yield from self._push(lost, snapshot.sidekiq_major, max_attempts, recover_queue)
                    lost = []
                continue
            if wait and not dry_run and verdict.settles_in is not None:
                undecided.append((stored, verdict.settles_in))
                continue
            if dry_run:
                dry.append((stored, verdict))
                if len(dry) == DRY_RUN_BATCH:
                    yield from self._dry_run(dry, snapshot)
                    dry = []
                continue
            yield self._decide(stored, verdict, snapshot, dry_run)
        if dry:
            yield from self._dry_run(dry, snapshot)
        if lost:
            yield from self._push(lost, snapshot.sidekiq_major, max_attempts, recover_queue)
        if undecided:
            yield from self._after_waiting(undecided)

    def _after_waiting(self, undecided: list[tuple[StoredJob, float]]) -> Iterator[RestartOutcome]:
        self._sleep(max(settles_in for _, settles_in in undecided) + WAIT_MARGIN_SECONDS)
        snapshot = self._snapshot()
        for before, _ in undecided:
            stored = self._ledger.get(before.jid)
            if stored is None or stored.status is not JobStatus.STARTED:
                reason = "it completed, or was restarted elsewhere, while the restart waited"
                yield RestartOutcome(Job.from_stored(before), None, reason, taken=False)
                continue
            yield self._decide(stored, self._liveness.verdict(stored, snapshot), snapshot, dry_run=False)

    def _snapshot(self) -> SidekiqSnapshot:
        try:
            return self._liveness.snapshot()
        except SidekiqUnavailable as exc:
            raise RestartFailed(str(exc), RestartReport(dry_run=False)) from exc

    def _dry_run(
        self, batch: Sequence[tuple[StoredJob, Verdict]], snapshot: SidekiqSnapshot
    ) -> list[RestartOutcome]:
        """What a restart would do to each job of ``batch``, in its order, with the kept payloads
        of the restartable ones read in one query."""
        wanted = [stored.jid for stored, verdict in batch if verdict.liveness.restartable]
        kept: dict[str, tuple[str | None, str | None]] = {}
        if wanted:
            with self._ledger.engine.connect() as connection:
                kept = kept_payloads(connection, wanted)
        return [
            self._decide(stored, verdict, snapshot, dry_run=True, kept=kept.get(stored.jid, (None, None)))
            for stored, verdict in batch
        ]

    def _decide(
        self,
        stored: StoredJob,
        verdict: Verdict,
        snapshot: SidekiqSnapshot,
        dry_run: bool,
        kept: tuple[str | None, str | None] = (None, None),
    ) -> RestartOutcome:
        """A skip, or (a dry run) whether ``stored`` could be pushed as it was from its ``kept``
        payload, or the restart itself."""
        job = Job.from_stored(stored)
        if not verdict.liveness.restartable:
            reason = f"{verdict.liveness}: {verdict.reason}"
            return RestartOutcome(job, None, reason, taken=False, settles_in=verdict.settles_in)
        if dry_run:
            try:
                self._payload(kept, stored, DRY_RUN_JID, now_micros(), snapshot.sidekiq_major)
            except PayloadUnavailable as exc:
                return RestartOutcome(job, None, f"cannot be pushed as it was: {exc}", taken=False)
            return RestartOutcome(job, None, f"{verdict.liveness}: {verdict.reason}")
        (outcome,) = self._push([(stored, None)], snapshot.sidekiq_major)
        return outcome

    def _push(
        self,
        batch: Sequence[tuple[StoredJob, str | None]],
        sidekiq_major: int | None,
        max_attempts: int = 3,
        queue: str | None = None,
    ) -> list[RestartOutcome]:
        """Restart each job of ``batch`` (with why recovery takes it, or None when a person asked),
        in one transaction around one round trip to Redis: claim each original, push them all,
        record each replacement (or quarantine), commit. The outcomes in ``batch``'s order."""
        enqueuer = self._enqueuer
        if enqueuer is None:
            raise SidekiqUnavailable(NOT_CONFIGURED)
        now = now_micros()
        outcomes: dict[int, RestartOutcome] = {}
        try:
            with write_transaction(self._ledger.engine) as connection:
                planned: list[_Planned] = []
                for index, (stored, recovered) in enumerate(batch):
                    plan = self._plan(connection, stored, recovered, now, sidekiq_major, max_attempts, queue)
                    if isinstance(plan, RestartOutcome):
                        outcomes[index] = plan
                    else:
                        planned.append(replace(plan, index=index))
                pushed = enqueuer.push_all([plan.push for plan in planned]) if planned else []
                moves: list[Move] = []
                for plan, jid in zip(planned, pushed, strict=True):
                    outcomes[plan.index] = self._record(connection, plan, jid, now, moves)
                # Last, and once: the counts' rows stay unlocked while Redis is asked.
                apply_count_changes(connection, count_changes(moves))
        except redis.RedisError as exc:  # the transaction rolled back: every original is as it was
            raise RestartFailed(f"Sidekiq's Redis refused the push: {exc}", RestartReport(False)) from exc
        return [outcomes[index] for index in range(len(batch))]

    def _plan(
        self,
        connection: Connection,
        stored: StoredJob,
        recovered: str | None,
        now: Micros,
        sidekiq_major: int | None,
        max_attempts: int,
        queue: str | None,
    ) -> _Planned | RestartOutcome:
        """What pushing ``stored`` again takes, with its original claimed; or why it is skipped."""
        job = Job.from_stored(stored)
        jid, queue = new_jid(), queue or stored.queue  # recovery may send it elsewhere
        try:
            payload = self._payload(
                kept_payload(connection, stored.jid), stored, jid, now, sidekiq_major, queue
            )
        except PayloadUnavailable as exc:
            return RestartOutcome(job, None, f"cannot be pushed as it was: {exc}", taken=False)
        if not claim_original(connection, stored):
            reason = "it changed while restarting (completed, or restarted elsewhere)"
            return RestartOutcome(job, None, reason, taken=False)
        attempt = recovery_attempt(connection, stored) if recovered else 1
        poison = quarantine_reason(attempt, max_attempts) if recovered else None
        if poison is None:
            push = Push(stored.jid, jid, payload, queue)
        else:
            seconds = now / 1_000_000
            dead = dead_payload(payload, error=poison, now=seconds, sidekiq_major=self._major(sidekiq_major))
            push = Push(stored.jid, jid, dead, None, seconds)
        return _Planned(stored, job, recovered, attempt, poison, queue, push)

    @staticmethod
    def _record(
        connection: Connection, plan: _Planned, jid: str, now: Micros, moves: list[Move]
    ) -> RestartOutcome:
        """Record a push that was done: the replacement, linked to its original, or the quarantine.
        The jobs' moves (the original gone, a new replacement queued) are added to ``moves``."""
        stored = plan.stored
        moves.append(Move(stored.job_class, stored.queue, JobStatus.STARTED, None))
        if plan.poison is not None:
            record_quarantine(connection, stored, plan.poison, now)
            return RestartOutcome(plan.job, None, plan.poison, taken=False, quarantined=True)
        replacement = Report(jid, EventKind.QUEUED, now, stored.job_class, plan.queue, stored.arguments)
        if record_replacement(connection, stored, replacement, now, plan.recovered, plan.attempt):
            moves.append(Move(stored.job_class, plan.queue, None, JobStatus.QUEUED))
        return RestartOutcome(plan.job, jid, plan.recovered)

    def _payload(
        self,
        kept_form: tuple[str | None, str | None],
        stored: StoredJob,
        jid: str,
        now: Micros,
        sidekiq_major: int | None,
        queue: str | None = None,
    ) -> bytes:
        """The exact payload that pushes ``stored`` again as ``jid`` from its kept payload (form and
        text, ``kept_payload``); ``PayloadUnavailable`` if none."""
        form, kept = kept_form
        return restart_payload(
            job_class=stored.job_class,
            queue=queue or stored.queue,
            arguments=stored.arguments,
            payload_form=form,
            payload=kept,
            jid=jid,
            now=now / 1_000_000,
            sidekiq_major=self._major(sidekiq_major),
            seal=self._seal,
        )

    def _major(self, live: int | None) -> int:
        """The Sidekiq line whose units a push writes: the live processes', else the configured one."""
        if live is not None:
            return live
        return self._enqueuer.sidekiq_version if self._enqueuer is not None else DEFAULT_SIDEKIQ_MAJOR
