"""The alert loop: a pass every SUPERVISOR_ALERT_INTERVAL_SECONDS in ``serve`` finds the conditions
that hold (``domain.alerts``), keeps the alerts they open and resolve in the ledger, and sends the
messages that tell them (``services.notifier``).

One process at a time runs a pass on PostgreSQL (its own advisory lock, ``store.leadership``);
on SQLite every process may, each change being claimed in the ledger. The loop runs on its own
thread, off every request's path: ingest never waits for it, nor for a notification URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from sidekiq_supervisor.domain import alerts as rules
from sidekiq_supervisor.domain.alerts import (
    MIN_COMPLETED_FOR_P99,
    AlertRecord,
    Condition,
    Finding,
    MessageRecord,
    OrphanedJob,
    RunningJob,
)
from sidekiq_supervisor.domain.durations import percentiles
from sidekiq_supervisor.domain.liveness import Liveness
from sidekiq_supervisor.domain.model import JobStatus, Micros, iso_from_micros, micros_from_seconds
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.ledger import JobFilter
from sidekiq_supervisor.services.liveness import SidekiqUnavailable
from sidekiq_supervisor.services.loop_health import LoopHealth, this_process
from sidekiq_supervisor.services.notifier import Notifier
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store import alerts as store
from sidekiq_supervisor.store import analytics, conditions
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.leadership import ALERTS_LOCK_KEY, leading

logger = logging.getLogger(__name__)

# Uncompleted jobs one pass reads at most (oldest first); beyond, counts say "at least".
JOBS_READ = 10_000
# Completed runs of a class that its p99 is computed from (the newest).
P99_SAMPLE = 1_000
# Resolved alerts and messages are forgotten after SUPERVISOR_HISTORY_RETENTION_DAYS, checked
# this often.
PRUNE_EVERY: Micros = 3_600_000_000


@dataclass(frozen=True, slots=True)
class AlertRules:
    """The conditions' thresholds (0 turns one off): ``docs/alerts.md`` tells each."""

    uncompleted_minutes: float = 60.0
    slow_factor: float = 10.0
    slow_min_seconds: float = 60.0
    orphaned: int = 1
    recovered: int = 1
    quarantined: int = 1
    recovery_window_minutes: float = 60.0
    failure_percent: float = 25.0
    failure_min_runs: int = 20
    failure_window_minutes: float = 15.0
    silence_minutes: float = 15.0

    @classmethod
    def from_settings(cls, settings: Settings) -> AlertRules:
        """The thresholds the settings name (SUPERVISOR_ALERT_*)."""
        return cls(
            settings.alert_uncompleted_minutes, settings.alert_slow_factor, settings.alert_slow_min_seconds,
            settings.alert_orphaned, settings.alert_recovered, settings.alert_quarantined,
            settings.alert_recovery_window_minutes, settings.alert_failure_percent,
            settings.alert_failure_min_runs, settings.alert_failure_window_minutes,
            settings.alert_silence_minutes,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertingHealth(LoopHealth):
    """How the loop is doing, and what its last pass did."""

    opened: int = 0
    resolved: int = 0
    sent: int = 0
    failed: int = 0
    # Conditions the last pass could not check, and why (Sidekiq's Redis unreadable, say).
    unchecked: tuple[str, ...] = ()

    def document(self) -> dict[str, Any]:
        """The loop for scripts (``GET /api/v1/alerts``)."""
        return {
            **self.loop_document(),
            "opened_last_pass": self.opened,
            "resolved_last_pass": self.resolved,
            "sent_last_pass": self.sent,
            "failed_last_pass": self.failed,
            "unchecked": list(self.unchecked),
        }


@dataclass(frozen=True, slots=True)
class AlertsView:
    """What the Alerts page, the API and the CLI show."""

    health: AlertingHealth
    targets: tuple[str, ...]  # the notification URLs, secrets masked
    open: list[AlertRecord]
    history: list[AlertRecord]  # newest first
    messages: list[MessageRecord]  # newest first
    next_message_at: Micros  # when the rate limit lets the next alert message go

    def document(self) -> dict[str, Any]:
        """The view for scripts (``GET /api/v1/alerts`` and ``alerts --json``): times in ISO 8601."""
        return {
            "loop": self.health.document(),
            "targets": list(self.targets),
            "next_message_at": iso_from_micros(self.next_message_at),
            "open": [alert.document() for alert in self.open],
            "history": [alert.document() for alert in self.history],
            "messages": [message.document() for message in self.messages],
        }


@dataclass(slots=True)
class _Found:
    findings: list[Finding] = field(default_factory=list)
    checked: set[Condition] = field(default_factory=set)
    unchecked: list[str] = field(default_factory=list)


class Alerter:
    """Runs the alert loop: ``check`` is one pass, ``run`` repeats it until ``stop``."""

    def __init__(
        self,
        manager: JobManager,
        notifier: Notifier,
        rules: AlertRules | None = None,
        *,
        enabled: bool = False,
        interval_seconds: float = 30.0,
        resolve_after_seconds: float = 60.0,
        stale_after: float = 60.0,
        history_days: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._manager = manager
        self._engine: Engine = manager.ledger.engine
        self.notifier = notifier
        self.rules = rules or AlertRules()
        self._resolve_after = micros_from_seconds(resolve_after_seconds)
        self._stale_after = stale_after
        self._history = micros_from_seconds(history_days * 86_400)
        self._clock = clock
        self._watched_since = micros_from_seconds(clock())
        self._pruned_at: Micros | None = None
        self.health = AlertingHealth(enabled=enabled, interval_seconds=interval_seconds)
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._outage = OutageLog(logger, "the database (alerts)")

    @classmethod
    def from_settings(cls, manager: JobManager, settings: Settings, *, app: str | None = None) -> Alerter:
        """An alert loop with the settings' thresholds and notification URLs; its messages name
        ``app`` when one is given (a supervisor of several apps gives each app's)."""
        return cls(
            manager,
            Notifier.from_settings(manager.ledger.engine, settings, app=app),
            AlertRules.from_settings(settings),
            enabled=settings.alerts_enabled,
            interval_seconds=settings.alert_interval_seconds,
            resolve_after_seconds=settings.alert_resolve_after_seconds,
            stale_after=settings.process_stale_seconds,
            history_days=settings.history_retention_days,
        )

    # --- One pass ---------------------------------------------------------------------------

    def check(self) -> AlertingHealth:
        """One pass: find the conditions, open and resolve alerts, tell them, send what is due
        (nothing when another process leads). Its health."""
        with leading(self._engine, ALERTS_LOCK_KEY) as leader:
            if not leader:
                self.health = replace(
                    self._fresh_health(), last_pass_at=self._clock(), led=False, leader="another"
                )
                return self.health
            now = micros_from_seconds(self._clock())
            found = self.find(now)
            opened, resolved = self._apply(found, now)
            self.notifier.tell_waiting()
            tally = self.notifier.deliver_due()
            self._prune(now)
        self.health = replace(
            self._fresh_health(), last_pass_at=self._clock(), led=True,
            leader=this_process(),
            opened=opened, resolved=resolved, sent=tally.sent, failed=tally.failed,
            unchecked=tuple(found.unchecked),
        )  # fmt: skip
        return self.health

    def _fresh_health(self) -> AlertingHealth:
        return AlertingHealth(enabled=self.health.enabled, interval_seconds=self.health.interval_seconds)

    def find(self, now: Micros) -> _Found:
        """The conditions that hold at ``now``, and which conditions could be checked."""
        found = _Found()
        r = self.rules
        with self._engine.connect() as connection:
            running, capped = self._running(connection, now)
            found.findings += rules.uncompleted(running, now, r.uncompleted_minutes, capped=capped)
            p99 = self._p99(connection, {job.job_class for job in running}) if r.slow_factor > 0 else {}
            found.findings += rules.slow(running, p99, now, r.slow_factor, r.slow_min_seconds)
            found.checked |= {Condition.UNCOMPLETED, Condition.SLOW}
            since = now - micros_from_seconds(r.failure_window_minutes * 60)
            runs = conditions.runs_of_failing_classes(connection, since) if r.failure_percent > 0 else []
            found.findings += rules.failure_rates(
                runs, r.failure_percent, r.failure_min_runs, r.failure_window_minutes
            )
            found.checked.add(Condition.FAILURE_RATE)
            last_report = conditions.last_recorded_at(connection)
        window = now - micros_from_seconds(r.recovery_window_minutes * 60)
        recent = self._manager.ledger.recoveries_since(window)
        for quarantined, minimum in ((False, r.recovered), (True, r.quarantined)):
            found.findings += rules.recoveries(
                recent, minimum, r.recovery_window_minutes, quarantined=quarantined
            )
        found.checked |= {Condition.RECOVERED, Condition.QUARANTINED}
        self._find_in_sidekiq(found, now, last_report)
        return found

    def _running(self, connection: Connection, now: Micros) -> tuple[list[RunningJob], bool]:
        """The uncompleted jobs old enough for a rule (oldest first), and whether the read was capped."""
        r = self.rules
        ages = [r.uncompleted_minutes * 60] if r.uncompleted_minutes > 0 else []
        if r.slow_factor > 0:
            ages.append(r.slow_min_seconds)
        if not ages:
            return [], False
        cutoff = now - micros_from_seconds(min(ages))
        stored = analytics.uncompleted_before(connection, cutoff, JOBS_READ)
        jobs = [RunningJob(s.jid, s.job_class, s.timeline.started_at or now) for s in stored]
        return jobs, len(stored) >= JOBS_READ

    @staticmethod
    def _p99(connection: Connection, classes: set[str]) -> dict[str, Micros]:
        """Each class's p99 from started to complete, over its newest completed runs (when enough)."""
        found = {}
        for job_class in sorted(classes):
            rows = analytics.recent_durations(connection, job_class, P99_SAMPLE)
            values = sorted(started for _queued, started in rows if started is not None)
            if len(values) >= MIN_COMPLETED_FOR_P99:
                found[job_class] = percentiles(values)[2]
        return found

    def _find_in_sidekiq(self, found: _Found, now: Micros, last_report: Micros | None) -> None:
        """The orphaned and silence conditions, which need Sidekiq's Redis: unchecked without it."""
        r = self.rules
        liveness = self._manager.liveness
        try:
            snapshot = liveness.snapshot()
            orphans = []
            if r.orphaned > 0:
                for stored in self._manager.ledger.iterate(JobFilter(status=JobStatus.STARTED)):
                    verdict = liveness.verdict(stored, snapshot)
                    if verdict.liveness is Liveness.ORPHANED:
                        orphans.append(
                            OrphanedJob(stored.jid, stored.job_class, verdict.gone_process, verdict.reason)
                        )
                    if len(orphans) >= JOBS_READ:
                        break
        except SidekiqUnavailable as exc:
            found.unchecked.append(f"orphaned jobs and silence: {exc}")
            return
        found.findings += rules.orphaned(orphans, r.orphaned)
        live = sum(1 for beat in snapshot.beats.values() if snapshot.taken_at - beat <= self._stale_after)
        found.findings += rules.silence(last_report, self._watched_since, live, now, r.silence_minutes)
        found.checked |= {Condition.ORPHANED, Condition.SILENCE}

    def _apply(self, found: _Found, now: Micros) -> tuple[int, int]:
        """Keep the pass's changes; how many alerts opened and resolved."""
        opened = resolved = 0
        with write_transaction(self._engine) as connection:
            changes = rules.reconcile(
                store.open_alerts(connection), found.findings, found.checked, now, self._resolve_after
            )
            for finding in changes.opened:
                if store.open_alert(connection, finding, now):
                    opened += 1
                    logger.warning("alert fired: %s: %s", finding.condition.label, finding.summary)
            for alert, finding in changes.found_again:
                store.found_again(connection, alert.id, finding, now)
            for alert in changes.clearing:
                store.clearing(connection, alert.id, now)
            for alert in changes.resolved:
                if store.resolve(connection, alert.id, now):
                    resolved += 1
                    logger.warning("alert resolved: %s (%s)", alert.condition.label, alert.key)
        return opened, resolved

    def _prune(self, now: Micros) -> None:
        if self._history <= 0 or (self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY):
            return
        with write_transaction(self._engine) as connection:
            store.prune(connection, now - self._history)
        self._pruned_at = now

    # --- The loop ---------------------------------------------------------------------------

    async def run(self, interval_seconds: float) -> None:
        """A pass every ``interval_seconds`` (the first at once), or sooner when woken, until
        :meth:`stop`; a pass that fails is logged (once per outage) and tried again."""
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                await asyncio.to_thread(self.check)
            except OperationalError as exc:
                self._outage.failed(exc)
                self._failed(exc)
            except Exception as exc:
                logger.exception("the alert loop failed; it will try again")
                self._failed(exc)
            else:
                self._outage.succeeded()
            self.health = replace(self.health, next_pass_at=self._clock() + interval_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._woken(), interval_seconds)

    async def _woken(self) -> None:
        stopping = asyncio.ensure_future(self._stopping.wait())
        woken = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((stopping, woken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            woken.cancel()

    def _failed(self, exc: Exception) -> None:
        self.health = replace(self._fresh_health(), last_pass_at=self._clock(), error=str(exc))

    def wake(self) -> None:
        """Run a pass now (a test notification waits to be sent); call on the event loop."""
        self._wake.set()

    def stop(self) -> None:
        """End :meth:`run` after the pass under way (call on the event loop)."""
        self._stopping.set()

    # --- Reads ------------------------------------------------------------------------------

    def view(self, history: int = 50, messages: int = 20) -> AlertsView:
        """Open alerts, the newest ``history`` alerts and ``messages`` messages, the health."""
        with self._engine.connect() as connection:
            open_alerts = store.alert_records(connection, open_only=True, limit=1000)
            past = store.alert_records(connection, open_only=False, limit=history)
            sent = store.message_records(connection, messages)
        targets = tuple(target.shown for target in self.notifier.targets)
        return AlertsView(self.health, targets, open_alerts, past, sent, self.notifier.next_message_at())
