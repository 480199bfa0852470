"""The background pruner: completed jobs past ``SUPERVISOR_RETENTION_DAYS`` and history past
``SUPERVISOR_HISTORY_RETENTION_DAYS`` are deleted, a small transaction at a time.

Between batches the pruner pauses, so ingest (which needs SQLite's single write lock) never
waits for more than one batch. Every process of ``serve --workers N`` runs one; on PostgreSQL
an advisory lock makes them take turns, and the work itself is idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import Micros
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.event_counts import trim_event_counts
from sidekiq_supervisor.store.partitions import (
    default_partition,
    drop_partition,
    droppable,
    ensure_partitions_quietly,
    is_partitioned,
    lock_not_available,
)
from sidekiq_supervisor.store.retention import (
    lock_against_other_pruners,
    oldest_history_recorded_at,
    prune_completed_batch,
    prune_history_batch,
)
from sidekiq_supervisor.store.schema import job_events

logger = logging.getLogger(__name__)
DAY_MICROS = 86_400 * 1_000_000


@dataclass(frozen=True, slots=True)
class PruneReport:
    """What one pass deleted."""

    jobs: int
    events: int


class Pruner:
    """Deletes what retention no longer keeps; ``prune`` is one pass, ``run`` repeats it."""

    def __init__(
        self,
        engine: Engine,
        *,
        retention_days: float,
        history_retention_days: float,
        batch_size: int = 1000,
        pause_seconds: float = 0.01,
        clock: Callable[[], Micros] = now_micros,
    ) -> None:
        self._engine = engine
        self._retention = int(retention_days * DAY_MICROS)
        self._history_retention = int(history_retention_days * DAY_MICROS)
        self._batch_size = batch_size
        self._pause = pause_seconds
        self._clock = clock
        self._stopping = threading.Event()  # read by the pass, in its thread
        self._wake = asyncio.Event()
        self._outage = OutageLog(logger, "the database (retention)")

    @classmethod
    def from_settings(cls, engine: Engine, settings: Settings) -> Pruner:
        """A pruner with the retention the settings configure."""
        return cls(
            engine,
            retention_days=settings.retention_days,
            history_retention_days=settings.history_retention_days,
            batch_size=settings.prune_batch_size,
        )

    @property
    def enabled(self) -> bool:
        """Whether anything is ever deleted (a retention of 0 days keeps everything)."""
        return self._retention > 0 or self._history_retention > 0

    def prune(self) -> PruneReport:
        """One pass over the ledger; returns how many jobs and events it deleted. On PostgreSQL
        it first creates the upcoming daily partitions of the history that are missing."""
        now = self._clock()
        ensure_partitions_quietly(self._engine, now)
        jobs = self._prune_jobs(now - self._retention) if self._retention > 0 else 0
        events = self._prune_history(now - self._history_retention) if self._history_retention > 0 else 0
        with write_transaction(self._engine) as connection:
            trim_event_counts(connection, now)
        return PruneReport(jobs, events)

    async def run(self, interval_seconds: float) -> None:
        """Prune every ``interval_seconds`` (the first time one interval after start) until
        :meth:`stop`; a failed pass is logged and tried again at the next interval."""
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval_seconds)
            if self._stopping.is_set():
                return
            try:
                report = await asyncio.to_thread(self.prune)
            except OperationalError as exc:  # the database is down: once per outage, not per pass
                self._outage.failed(exc)
                continue
            except Exception:
                logger.exception("retention failed; it will try again")
                continue
            self._outage.succeeded()
            if report.jobs or report.events:
                logger.info("retention deleted %d jobs and %d events", report.jobs, report.events)

    def stop(self) -> None:
        """End the current pass after its batch and :meth:`run` with it (call on the event loop)."""
        self._stopping.set()
        self._wake.set()

    def _prune_jobs(self, cutoff: Micros) -> int:
        # Completed jobs are walked in id (first report) order. A batch with nothing old enough
        # ends the pass: rows first reported after the cutoff cannot have completed before it.
        deleted, after_id = 0, 0
        while True:
            with write_transaction(self._engine) as connection:
                lock_against_other_pruners(connection)
                batch = prune_completed_batch(connection, cutoff, after_id, self._batch_size)
            deleted += batch.deleted
            if batch.last_id is None or batch.due == 0 or self._stopping.is_set():
                return deleted
            after_id = batch.last_id
            time.sleep(self._pause)

    def _prune_history(self, cutoff: Micros) -> int:
        # Partitioned (PostgreSQL): whole days first, one transaction each, then the rest of the
        # DEFAULT partition row by row; otherwise the whole history row by row.
        with self._engine.connect() as connection:
            partitioned = is_partitioned(connection)
            old_days = droppable(connection, cutoff) if partitioned else []
        deleted = 0
        for partition in old_days:
            if self._stopping.is_set():
                return deleted
            try:
                with write_transaction(self._engine) as connection:
                    lock_against_other_pruners(connection)
                    deleted += drop_partition(connection, partition, cutoff)
            except OperationalError as exc:
                if not lock_not_available(exc):
                    raise
                # Long reads hold job_events: the next pass drops it.
                logger.info("retention could not lock job_events to drop %s; next pass", partition.name)
                break
        source = default_partition if partitioned else job_events
        while True:
            with self._engine.connect() as connection:
                oldest = oldest_history_recorded_at(connection, source)
            if oldest is None or oldest >= cutoff:
                return deleted
            with write_transaction(self._engine) as connection:
                lock_against_other_pruners(connection)
                count = prune_history_batch(connection, cutoff, self._batch_size, source)
            deleted += count
            if count == 0 or self._stopping.is_set():
                return deleted
            time.sleep(self._pause)
