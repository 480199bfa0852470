"""The overview of every app (``/apps``, ``GET /api/v1/apps``): per app what a first responder
needs, from its Sidekiq's Redis and its ledger, read for every app at once, each within a deadline.

- **Sidekiq's figures** are read at each request: the summary bar (``SidekiqMonitor.stats``), the
  processed and failed counters of today (Sidekiq's ``stat:processed:YYYY-MM-DD``, through
  ``SidekiqMonitor.history``) and the queues' latencies (``SidekiqMonitor.queues``): five round
  trips. Every app's read runs on a thread of its own at the same time (a limiter of the
  overview's own, so 50 apps never wait for the 40 threads that serve the rest of the service),
  and the answer waits for each at most ``deadline_seconds``. A Redis that accepts but never
  answers holds its thread until the socket timeout (5 s, ``sidekiq_redis.connection``), not the
  answer; while that read is still under way, the next request for that app joins it rather than
  starting another, so a hung Redis holds one thread at most however often the page refreshes.
- **The ledger's figures** (uncompleted jobs, and how many of them are orphaned) come from the
  reading ``GET /metrics`` keeps for each app (``LedgerFiguresCache``): read in the background,
  at most every ``SUPERVISOR_METRICS_CACHE_SECONDS``, with every uncompleted job classified by
  the liveness rules of restarts. Counting and classifying them at each request would cost
  0.3-0.6 s per app at a million jobs (docs/monitoring.md); the reading's time goes with them.

Nothing here raises for one app's trouble: each app's entry says what could not be read.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import anyio
import anyio.to_thread
import redis

from sidekiq_supervisor.domain.liveness import Liveness
from sidekiq_supervisor.domain.model import JobStatus
from sidekiq_supervisor.services.liveness import SidekiqUnavailable
from sidekiq_supervisor.services.prometheus.ledger_figures import LedgerFiguresCache
from sidekiq_supervisor.services.sidekiq_monitor import SidekiqMonitor

logger = logging.getLogger(__name__)

# How long the overview waits for any one app. Healthy Redis answers its five round trips in a
# few milliseconds (tens across a region); a Redis still silent after this is shown as timed out
# rather than making a first responder wait for the socket timeout (5 s). Half the request
# deadline at most (SUPERVISOR_REQUEST_TIMEOUT_SECONDS, 8 s by default), so that the page always
# answers before the service would give up on it.
DEADLINE_SECONDS = 2.0


class RedisState(StrEnum):
    """Whether an app's Sidekiq Redis answered the overview."""

    OK = "ok"
    UNREACHABLE = "unreachable"  # refused, reset, unknown host: an error came back
    TIMEOUT = "timeout"  # nothing came back within the deadline
    NOT_CONFIGURED = "not configured"  # the app has no redis_url


class LedgerState(StrEnum):
    """Whether the app's ledger figures could be shown."""

    OK = "ok"
    UNAVAILABLE = "unavailable"  # the database did not answer the last reading
    PENDING = "pending"  # the first reading has not finished within the deadline


@dataclass(frozen=True, slots=True)
class SidekiqNow:
    """One app's Sidekiq, as its Redis said it."""

    processed_today: int
    failed_today: int
    enqueued: int
    retries: int
    scheduled: int
    dead: int
    busy: int
    processes: int
    # Seconds the oldest waiting job of any queue has waited (0 with every queue empty), and its queue.
    latency_seconds: float
    latency_queue: str | None


@dataclass(frozen=True, slots=True)
class LedgerNow:
    """One app's ledger, as the latest reading of its figures found it."""

    queued: int
    uncompleted: int
    # Uncompleted jobs no live process runs and Sidekiq holds no retry for; None when Sidekiq's
    # Redis could not be read, at the reading or now.
    orphaned: int | None
    read_at: datetime


@dataclass(frozen=True, slots=True)
class AppSource:
    """What the overview reads of one app."""

    name: str
    monitor: SidekiqMonitor
    redis_configured: bool
    ledger: LedgerFiguresCache


@dataclass(frozen=True, slots=True)
class AppStatus:
    """One app's entry of the overview."""

    name: str
    checked_at: datetime
    redis: RedisState
    # Why Redis could not be read, for people; None when it was.
    redis_error: str | None
    sidekiq: SidekiqNow | None
    ledger_state: LedgerState
    ledger: LedgerNow | None

    @property
    def healthy(self) -> bool:
        """Whether everything of the app could be read."""
        return self.redis is RedisState.OK and self.ledger_state is LedgerState.OK


def read_sidekiq_now(monitor: SidekiqMonitor, now: float) -> SidekiqNow:
    """The figures of one app's Sidekiq (on a worker thread); ``SidekiqUnavailable`` when its Redis
    cannot be read."""
    stats = monitor.stats()
    (today,) = monitor.history(days=1)
    queues = monitor.queues()
    oldest = max(queues, key=lambda queue: queue.latency, default=None)
    return SidekiqNow(
        processed_today=today.processed,
        failed_today=today.failed,
        enqueued=stats.enqueued,
        retries=stats.retries,
        scheduled=stats.scheduled,
        dead=stats.dead,
        busy=stats.busy,
        processes=stats.processes,
        latency_seconds=0.0 if oldest is None else oldest.latency,
        latency_queue=None if oldest is None or oldest.latency <= 0 else oldest.name,
    )


@dataclass(frozen=True, slots=True)
class _SidekiqRead:
    """The outcome of one read: the figures, or why there are none."""

    figures: SidekiqNow | None
    error: str | None = None
    timed_out: bool = False


class AppsOverview:
    """Reads every app's figures at once, each within ``deadline_seconds``.

    One per running service: it remembers the reads still under way, so that a hung Redis is
    asked once at a time.
    """

    def __init__(self, *, deadline_seconds: float = DEADLINE_SECONDS, clock: Callable[[], float] = time.time):
        self.deadline_seconds = deadline_seconds
        self._clock = clock
        self._limiter: anyio.CapacityLimiter | None = None
        # Each app's Sidekiq read under way (at most one per app), by name.
        self._reads: dict[str, asyncio.Task[_SidekiqRead]] = {}

    async def check(self, apps: Sequence[AppSource]) -> list[AppStatus]:
        """Every app's entry, in the order given, within the deadline (plus scheduling)."""
        if self._limiter is None or self._limiter.total_tokens < len(apps):
            # One thread per app: with one read per app at most, no app ever waits for a thread.
            self._limiter = anyio.CapacityLimiter(max(1, len(apps)))
        deadline = asyncio.get_running_loop().time() + self.deadline_seconds
        return list(await asyncio.gather(*(self._check(app, deadline) for app in apps)))

    async def refresh_ledgers(self, apps: Sequence[AppSource]) -> None:
        """Start the next reading of each stale ledger (call once the answer is sent, as /metrics
        does: a reading beside the answer would compete with it for the interpreter). On the event
        loop: the readings are its tasks."""
        for app in apps:
            app.ledger.refresh_if_stale()

    async def _check(self, app: AppSource, deadline: float) -> AppStatus:
        checked_at = datetime.fromtimestamp(self._clock(), UTC)
        read, reading = await asyncio.gather(self._sidekiq(app, deadline), self._ledger(app, deadline))
        if not app.redis_configured:
            redis_state = RedisState.NOT_CONFIGURED
        elif read.figures is not None:
            redis_state = RedisState.OK
        else:
            redis_state = RedisState.TIMEOUT if read.timed_out else RedisState.UNREACHABLE
        ledger_state, ledger = reading
        if ledger is not None and redis_state is not RedisState.OK:
            # Orphaned is a verdict against Sidekiq's Redis: none while it cannot be read now.
            ledger = LedgerNow(ledger.queued, ledger.uncompleted, None, ledger.read_at)
        return AppStatus(app.name, checked_at, redis_state, read.error, read.figures, ledger_state, ledger)

    async def _sidekiq(self, app: AppSource, deadline: float) -> _SidekiqRead:
        if not app.redis_configured:
            return _SidekiqRead(None)
        task = self._reads.get(app.name)
        if task is None or task.get_loop() is not asyncio.get_running_loop():
            task = asyncio.ensure_future(self._read_in_thread(app.monitor))
            self._reads[app.name] = task
            task.add_done_callback(lambda done: self._forget(app.name, done))
        try:
            async with asyncio.timeout_at(deadline):
                # Shielded: the read goes on for the next request when this one stops waiting.
                return await asyncio.shield(task)
        except TimeoutError:
            return _SidekiqRead(None, f"no answer within {self.deadline_seconds:g} s", timed_out=True)

    def _forget(self, name: str, done: asyncio.Task[_SidekiqRead]) -> None:
        if self._reads.get(name) is done:
            del self._reads[name]

    async def _read_in_thread(self, monitor: SidekiqMonitor) -> _SidekiqRead:
        try:
            figures = await anyio.to_thread.run_sync(
                read_sidekiq_now, monitor, self._clock(), limiter=self._limiter, abandon_on_cancel=True
            )
        except SidekiqUnavailable as exc:
            timed_out = isinstance(exc.__cause__, redis.TimeoutError)
            return _SidekiqRead(None, str(exc), timed_out=timed_out)
        except Exception as exc:  # a reply no reader expected: this app's entry says so, not a 500
            logger.exception("reading Sidekiq's figures for the overview of apps failed")
            return _SidekiqRead(None, f"Sidekiq's Redis could not be read: {exc}")
        return _SidekiqRead(figures)

    async def _ledger(self, app: AppSource, deadline: float) -> tuple[LedgerState, LedgerNow | None]:
        try:
            async with asyncio.timeout_at(deadline):
                reading = await app.ledger.current()
        except TimeoutError:
            return LedgerState.PENDING, None
        if not reading.database_up:
            return LedgerState.UNAVAILABLE, None
        figures = reading.figures
        if figures is None:  # the first reading is still under way
            return LedgerState.PENDING, None
        orphaned = None if figures.liveness is None else figures.liveness[Liveness.ORPHANED]
        ledger = LedgerNow(
            queued=figures.jobs[JobStatus.QUEUED],
            uncompleted=figures.jobs[JobStatus.STARTED],
            orphaned=orphaned,
            read_at=datetime.fromtimestamp(figures.read_at, UTC),
        )
        return LedgerState.OK, ledger
