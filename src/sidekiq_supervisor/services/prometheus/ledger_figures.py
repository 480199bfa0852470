"""The ledger's figures for GET /metrics, read in the background and kept a few seconds.

One reading counts the jobs per status, reads every uncompleted job (its start, for the ages, and
its liveness against one snapshot of Sidekiq's Redis) and the classes of the newest jobs (which
classes keep a label of their own). At a million jobs that takes 0.3-0.6 s, mostly reading and
classifying 45,000 uncompleted jobs (``bench/metrics.py``, docs/monitoring.md): too long to wait
for on each scrape. So a scrape answers from the latest reading and, once that is older than
``SUPERVISOR_METRICS_CACHE_SECONDS``, starts the next one in the background once its answer is
sent (a reading running beside the answer would compete with it for the interpreter): the answer
never waits on the database, except the first of a process, which waits a few seconds for one.

The same ledger gives the same figures to every process: across instances, take ``max``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from array import array
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from sidekiq_supervisor.domain.liveness import Liveness
from sidekiq_supervisor.domain.model import JobStatus, Micros
from sidekiq_supervisor.services.liveness import LivenessChecker, SidekiqUnavailable
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.store import figures
from sidekiq_supervisor.store.figures import UncompletedJob
from sidekiq_supervisor.store.job_counts import jobs_per_status

logger = logging.getLogger(__name__)

# The busiest classes are those with the most jobs among the newest this many (7 ms to read).
BUSIEST_WINDOW = 20_000
# The first scrape of a process waits this long for the first reading, then answers without it.
FIRST_WAIT_SECONDS = 5.0
# Uncompleted jobs classified between two pauses for other threads (about 2 ms of work).
LIVENESS_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class LedgerFigures:
    """One reading of the ledger, taken at ``read_at`` (epoch seconds)."""

    read_at: float
    jobs: Mapping[JobStatus, int]
    # The latest start of every uncompleted job (epoch micros), sorted: ages are taken at scrape time.
    starts: Sequence[Micros]
    # Uncompleted jobs per liveness; None when Sidekiq's Redis could not be read.
    liveness: Mapping[Liveness, int] | None
    # Jobs per class among the newest BUSIEST_WINDOW jobs.
    recent_classes: Mapping[str, int]


def read_ledger_figures(
    engine: Engine, checker: LivenessChecker, clock: Callable[[], float] = time.time
) -> LedgerFigures:
    """Read the figures (on a worker thread: it waits on the database and on Redis)."""
    with engine.connect() as connection:
        jobs = jobs_per_status(connection)
        uncompleted: list[UncompletedJob] = []
        for chunk in figures.uncompleted_jobs(connection):
            uncompleted += chunk
            _let_others_run()
        recent_classes = figures.recent_class_counts(connection, BUSIEST_WINDOW)
    starts = array("q", sorted(job.started_at for job in uncompleted if job.started_at is not None))
    return LedgerFigures(clock(), jobs, starts, liveness_counts(checker, uncompleted), recent_classes)


def _let_others_run() -> None:
    """Hand the interpreter to any thread waiting for it (the event loop, a scrape, the writer).

    A reading is tens of milliseconds of Python per 10,000 uncompleted jobs; without a pause a
    waiting thread gets the interpreter only when its 5 ms switch interval runs out, and a scrape
    that waits for it a dozen times (its Redis reads, its trips off the loop) took 60 ms instead
    of 5 while a reading ran (bench/metrics.py, cache 0 s).
    """
    time.sleep(0)


def read_recent_classes(engine: Engine) -> dict[str, int]:
    """Jobs per class among the newest jobs, from which the busiest classes are taken."""
    with engine.connect() as connection:
        return figures.recent_class_counts(connection, BUSIEST_WINDOW)


def liveness_counts(
    checker: LivenessChecker, uncompleted: list[UncompletedJob]
) -> dict[Liveness, int] | None:
    """Uncompleted jobs per liveness, by the rules of the liveness page and restarts."""
    try:
        snapshot = checker.snapshot()
    except SidekiqUnavailable:
        return None
    counts = dict.fromkeys(Liveness, 0)
    for index, job in enumerate(uncompleted, 1):
        counts[checker.verdict_of(job.jid, job.worker, job.started_at, snapshot).liveness] += 1
        if index % LIVENESS_CHUNK == 0:
            _let_others_run()
    return counts


@dataclass(frozen=True, slots=True)
class Reading:
    """What a scrape gets: the latest figures (None before the first, or while the database is
    down) and whether the database answered the last reading (and is not holding one up)."""

    figures: LedgerFigures | None
    database_up: bool


class LedgerFiguresCache:
    """The latest ``LedgerFigures`` of this process, read again in the background when stale."""

    def __init__(
        self,
        read: Callable[[], LedgerFigures],
        *,
        max_age: float,
        hung_after: float,
        on_read: Callable[[LedgerFigures], None] = lambda figures: None,
        first_wait: float = FIRST_WAIT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._max_age = max_age
        self._hung_after = hung_after
        self._on_read = on_read
        self._first_wait = first_wait
        self._clock = clock
        self._figures: LedgerFigures | None = None
        self._read_at = 0.0  # on ``clock``
        self._up = True
        self._attempted = False
        self._task: asyncio.Task[None] | None = None
        self._started = 0.0
        self._outage = OutageLog(logger, "the database (metrics)")

    async def current(self) -> Reading:
        """The latest reading; the first call waits (a while) for the first (on the event loop)."""
        if not self._attempted:
            self.refresh_if_stale()
            await self._wait(self._first_wait)
        hung = self._task is not None and self._clock() - self._started > self._hung_after
        up = self._up and not hung
        return Reading(self._figures if up else None, up)

    def refresh_if_stale(self) -> None:
        """Start the next reading in the background, unless one runs or the latest is fresh."""
        now = self._clock()
        if self._task is None and (self._figures is None or now - self._read_at >= self._max_age):
            self._started = now
            self._task = asyncio.create_task(self._refresh(), name="ledger-figures")

    async def close(self) -> None:
        """Let a reading under way finish (for at most the first wait), at shutdown."""
        await self._wait(self._first_wait)

    async def _wait(self, seconds: float) -> None:
        """Wait for the reading under way, if any, for at most ``seconds``."""
        task = self._task
        if task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), seconds)

    async def _refresh(self) -> None:
        try:
            figures = await asyncio.to_thread(self._read)
        except SQLAlchemyError as exc:
            self._outage.failed(exc)
            self._figures, self._up = None, False
        except Exception:
            logger.exception("reading the ledger's figures for /metrics failed")
            self._figures, self._up = None, True
        else:
            self._outage.succeeded()
            self._on_read(figures)
            self._figures, self._up, self._read_at = figures, True, self._clock()
        finally:
            self._attempted = True
            self._task = None
