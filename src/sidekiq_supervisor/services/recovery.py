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

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.services.restart import RestartFailed, RestartOutcome
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.leadership import leading

logger = logging.getLogger(__name__)


class Recoverer:
    """Runs automatic recovery: ``recover`` is one pass, ``run`` repeats it until ``stop``."""

    def __init__(
        self, manager: JobManager, engine: Engine, *, unknown_after: float | None, max_attempts: int = 3
    ) -> None:
        self._manager = manager
        self._engine = engine
        self._unknown_after = unknown_after
        self._max_attempts = max_attempts
        self._stopping = asyncio.Event()
        self._outage = OutageLog(logger, "Sidekiq's Redis or the database (recovery)")

    @classmethod
    def from_settings(cls, manager: JobManager, engine: Engine, settings: Settings) -> Recoverer:
        """A recoverer with the settings' rule for jobs reported without a process identity."""
        return cls(
            manager,
            engine,
            unknown_after=settings.recover_unknown_after_seconds,
            max_attempts=settings.recover_max_attempts,
        )

    def recover(self) -> list[RestartOutcome]:
        """One pass: the jobs it pushed again (none when another process leads)."""
        with leading(self._engine) as leader:
            if not leader:
                return []
            return self._manager.recover_lost_jobs(
                unknown_after=self._unknown_after, max_attempts=self._max_attempts
            )

    async def run(self, interval_seconds: float) -> None:
        """A pass every ``interval_seconds`` (the first at once) until :meth:`stop`; a pass that
        fails (Redis or the database down) is logged once per outage and tried again."""
        while not self._stopping.is_set():
            try:
                recovered = await asyncio.to_thread(self.recover)
            except (RestartFailed, OperationalError) as exc:
                self._outage.failed(exc)
            except Exception:
                logger.exception("automatic recovery failed; it will try again")
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval_seconds)

    def stop(self) -> None:
        """End :meth:`run` after the pass under way (call on the event loop)."""
        self._stopping.set()
