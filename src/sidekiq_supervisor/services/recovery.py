"""Automatic recovery: a loop in ``serve`` that pushes lost jobs again, with no one asking.

Off unless ``SUPERVISOR_AUTO_RECOVER=true``. Every ``SUPERVISOR_RECOVER_INTERVAL_SECONDS`` one
pass (one process at a time on PostgreSQL: ``store.leadership``) restarts, exactly as they were
pushed, the uncompleted jobs the rules of ``domain.recovery`` call lost. Each push is claimed in
the ledger first and marked in Redis per original, so a pass killed half-way, run twice, or run
by two processes at once never pushes a job twice. Every recovery is logged and kept in the
original's history (its ``restarted`` event says ``recovered`` and why).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.loop_health import LoopHealth, this_process
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.services.prometheus.instruments import Instruments
from sidekiq_supervisor.services.restart import RestartFailed, RestartOutcome
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.leadership import leading

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class RecoveryHealth(LoopHealth):
    """How the loop is doing, for people and monitors, and what its last pass pushed."""

    recovered: int = 0  # pushed again by the last pass
    quarantined: int = 0

    def document(self) -> dict[str, Any]:
        """The loop for scripts (``GET /api/v1/recoveries``)."""
        return {
            **self.loop_document(),
            "recovered_last_pass": self.recovered,
            "quarantined_last_pass": self.quarantined,
        }


class Recoverer:
    """Runs automatic recovery: ``recover`` is one pass, ``run`` repeats it until ``stop``."""

    def __init__(
        self,
        manager: JobManager,
        engine: Engine,
        *,
        unknown_after: float | None,
        max_attempts: int = 3,
        enabled: bool = False,
        interval_seconds: float = 15.0,
        queue: str | None = None,
        exclude: tuple[str, ...] = (),
        instruments: Instruments | None = None,
    ) -> None:
        self._manager = manager
        self._instruments = instruments or Instruments.unobserved()
        self._engine = engine
        self._unknown_after = unknown_after
        self._max_attempts = max_attempts
        self._queue = queue
        self._exclude = exclude
        self.health = RecoveryHealth(enabled=enabled, interval_seconds=interval_seconds)
        self._stopping = asyncio.Event()
        self._outage = OutageLog(logger, "Sidekiq's Redis or the database (recovery)")

    @classmethod
    def from_settings(
        cls, manager: JobManager, engine: Engine, settings: Settings, instruments: Instruments | None = None
    ) -> Recoverer:
        """A recoverer with the settings' rule for jobs reported without a process identity."""
        return cls(
            manager,
            engine,
            unknown_after=settings.recover_unknown_after_seconds,
            max_attempts=settings.recover_max_attempts,
            enabled=settings.auto_recover,
            interval_seconds=settings.recover_interval_seconds,
            queue=settings.recover_queue,
            exclude=settings.recover_exclude_patterns,
            instruments=instruments,
        )

    def recover(self) -> list[RestartOutcome]:
        """One pass: the jobs it pushed again (none when another process leads)."""
        with leading(self._engine) as leader:
            done = (
                self._manager.recover_lost_jobs(
                    unknown_after=self._unknown_after,
                    max_attempts=self._max_attempts,
                    queue=self._queue,
                    exclude=self._exclude,
                )
                if leader
                else []
            )
        recovered = sum(outcome.taken for outcome in done)
        quarantined = sum(outcome.quarantined for outcome in done)
        self._instruments.recovered.inc(recovered)
        self._instruments.quarantined.inc(quarantined)
        self.health = RecoveryHealth(
            enabled=self.health.enabled, interval_seconds=self.health.interval_seconds,
            last_pass_at=time.time(), led=leader, leader=this_process() if leader else "another",
            recovered=recovered, quarantined=quarantined,
        )  # fmt: skip
        return done

    async def run(self, interval_seconds: float) -> None:
        """A pass every ``interval_seconds`` (the first at once) until :meth:`stop`; a pass that
        fails (Redis or the database down) is logged once per outage and tried again."""
        while not self._stopping.is_set():
            try:
                recovered = await asyncio.to_thread(self.recover)
            except (RestartFailed, OperationalError) as exc:
                self._outage.failed(exc)
                self._failed(exc)
            except Exception as exc:
                logger.exception("automatic recovery failed; it will try again")
                self._failed(exc)
            else:
                self._outage.succeeded()
                for outcome in recovered:
                    if outcome.quarantined:
                        logger.error(
                            "quarantined job %s (%s) in Sidekiq's Dead set: %s",
                            outcome.original.jid, outcome.original.job_class, outcome.reason,
                        )  # fmt: skip
                    elif outcome.taken:
                        logger.warning(
                            "recovered job %s (%s) as %s: %s",
                            outcome.original.jid, outcome.original.job_class, outcome.new_jid, outcome.reason,
                        )  # fmt: skip
            self.health = replace(self.health, next_pass_at=time.time() + interval_seconds)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_seconds)

    def _failed(self, exc: Exception) -> None:
        self.health = RecoveryHealth(
            enabled=self.health.enabled,
            interval_seconds=self.health.interval_seconds,
            last_pass_at=time.time(),
            error=str(exc),
        )

    def stop(self) -> None:
        """End :meth:`run` after the pass under way (call on the event loop)."""
        self._stopping.set()
