"""Group commit: reports from concurrent requests share transactions, one writer per process.

Requests hand their reports to :class:`GroupCommitWriter` and wait. A single writer thread takes
everything that is pending, stores it in one transaction, and wakes the waiters only after the
commit, so a 2xx always means stored. While one transaction runs, the next batch gathers.

A report not committed within the writer's deadline is refused (``IngestUnavailable``) and left
out of its transaction, so the client's 503 is the truth. One watchdog task checks the deadlines
of all waiting reports a few times a second: a timer per request cost more CPU than storing it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import Report
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.services.prometheus.instruments import Instruments, Refusal
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.writer import WriteResult, write_reports

__all__ = ["GroupCommitWriter", "IngestUnavailable", "WriteResult", "WriterHealth"]

logger = logging.getLogger(__name__)


class IngestUnavailable(RuntimeError):
    """The report was not stored: the writer is overloaded, stopped, or the database failed."""

    def __init__(self, message: str, reason: Refusal) -> None:
        super().__init__(message)
        self.reason = reason


# The reports, the future their request awaits, and the loop time by which they must be committed.
class Ticket(NamedTuple):
    """One request's reports waiting to be written, the future its request awaits, and the loop
    time past which it answers 503 (a NamedTuple: as cheap as the tuple it was, and named)."""

    reports: Sequence[Report]
    future: asyncio.Future[list[WriteResult]]
    deadline: float


class WriterHealth(NamedTuple):
    """A moment's view of the writer, for /healthz (``GroupCommitWriter.health``)."""

    running: bool
    pending_reports: int
    queue_limit: int
    # The transaction under way holds a report past its deadline: the database has not let the
    # writer commit within the deadline (a held write lock, a hung server).
    overdue: bool


class GroupCommitWriter:
    """Stores reports in batches; ``submit`` returns once its reports are committed."""

    def __init__(
        self,
        engine: Engine,
        *,
        batch_size: int = 1000,
        queue_limit: int = 50_000,
        deadline_seconds: float = math.inf,
        instruments: Instruments | None = None,
    ) -> None:
        self._engine = engine
        # What it counts for /metrics (a registry of its own when no one scrapes it).
        self._instruments = instruments or Instruments.unobserved()
        self._instruments.queue_limit.set(queue_limit)
        self._batch_size = batch_size
        self._queue_limit = queue_limit
        self._deadline_seconds = deadline_seconds
        self._pending: deque[Ticket] = deque()
        self._taken: list[Ticket] = []  # the batch of the transaction under way
        self._pending_reports = 0
        self._wakeup = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._accepting = False
        self._outage = OutageLog(logger, "the database (storing reports)")

    @property
    def health(self) -> WriterHealth:
        """Whether the writer runs, how full its queue is, and whether its transaction is overdue.

        Read from memory, never waiting; call it on the writer's event loop (deadlines are in its
        time).
        """
        running = self._accepting and self._task is not None and not self._task.done()
        now = asyncio.get_running_loop().time()
        overdue = any(deadline <= now for _, _, deadline in self._taken)
        return WriterHealth(running, self._pending_reports, self._queue_limit, overdue)

    async def start(self) -> None:
        """Start the writer loop (and the deadline watchdog, when there is a deadline)."""
        self._accepting = True
        self._task = asyncio.create_task(self._run(), name="ledger-writer")
        if math.isfinite(self._deadline_seconds):
            self._watchdog = asyncio.create_task(self._refuse_overdue(), name="ledger-writer-deadline")

    async def stop(self) -> None:
        """Refuse new reports, commit what is pending, then stop."""
        self._accepting = False
        self._wakeup.set()
        if self._task is not None:
            await self._task
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._executor.shutdown(wait=True)

    async def submit(self, reports: Sequence[Report]) -> list[WriteResult]:
        """Store ``reports`` (in a shared transaction) and return one result per report."""
        self._instruments.reports_received(reports)
        try:
            return await self._submit(reports)
        except IngestUnavailable as exc:
            self._instruments.reports_refused(len(reports), exc.reason)
            raise

    async def _submit(self, reports: Sequence[Report]) -> list[WriteResult]:
        if not self._accepting:
            raise IngestUnavailable("the service is shutting down", Refusal.STOPPING)
        if self._pending_reports + len(reports) > self._queue_limit:
            raise IngestUnavailable("too many reports are waiting to be stored", Refusal.OVERLOADED)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[WriteResult]] = loop.create_future()
        ticket = Ticket(reports, future, loop.time() + self._deadline_seconds)
        self._pending.append(ticket)
        self._pending_reports += len(reports)
        self._wakeup.set()
        try:
            # Not shielded: cancelling the request cancels the future, which is how the writer
            # learns that nobody waits for these reports any more.
            return await future
        except asyncio.CancelledError:
            # The request gave up (the client left, or a timeout of the caller's). A ticket still
            # queued is withdrawn; a taken one is marked abandoned (its future is cancelled), and
            # its transaction leaves it out unless it is already committing. So a 503 the client
            # gets is the truth, except when the deadline passes during the commit itself.
            self._withdraw(ticket)
            future.cancel()
            raise

    def _withdraw(self, ticket: Ticket) -> None:
        try:
            self._pending.remove(ticket)
        except ValueError:
            return  # a transaction has it: it is stored or failed with its batch
        self._pending_reports -= len(ticket.reports)

    async def _refuse_overdue(self) -> None:
        loop = asyncio.get_running_loop()
        tick = min(0.25, self._deadline_seconds / 10)
        refusal = f"the database did not answer within {self._deadline_seconds:g} s"
        while True:
            await asyncio.sleep(tick)
            # /metrics' view of the queue, a few times a second rather than on every report.
            self._instruments.queue.set(self._pending_reports)
            now = loop.time()
            # Pending tickets are in submission order, so the overdue ones lead.
            while self._pending and self._pending[0].deadline <= now:
                reports, future, _ = self._pending.popleft()
                self._pending_reports -= len(reports)
                future.set_exception(IngestUnavailable(refusal, Refusal.TIMEOUT))
            # A transaction that already holds a late ticket leaves it out (see _write).
            for _, future, deadline in self._taken:
                if deadline <= now and not future.done():
                    future.set_exception(IngestUnavailable(refusal, Refusal.TIMEOUT))

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self._accepting or self._pending:
            if not self._pending:
                await self._wakeup.wait()
                self._wakeup.clear()
                continue
            self._taken = self._take_batch()
            try:
                await loop.run_in_executor(self._executor, self._commit, self._taken)
            finally:
                self._taken = []

    def _take_batch(self) -> list[Ticket]:
        tickets = [self._pending.popleft()]
        size = len(tickets[0].reports)
        while self._pending and size + len(self._pending[0].reports) <= self._batch_size:
            ticket = self._pending.popleft()
            tickets.append(ticket)
            size += len(ticket.reports)
        self._pending_reports -= size
        return tickets

    def _commit(self, tickets: list[Ticket]) -> None:
        """Runs on the writer thread; resolves every ticket's future on the event loop."""
        tickets = [ticket for ticket in tickets if not ticket.future.done()]
        if not tickets:
            return
        reports = [report for batch, _, _ in tickets for report in batch]
        began = time.perf_counter()
        try:
            results = self._write(reports, tickets)
        except _Abandoned:
            self._commit(tickets)  # again, without the tickets whose requests gave up meanwhile
            return
        except OperationalError as exc:
            # The database failed (unreachable, locked), not a report: retrying each ticket alone
            # would only make every waiting request wait out the failure once more.
            self._outage.failed(exc)
            failures: list[Outcome] = []
            for ticket in tickets:
                unavailable = IngestUnavailable("the database is unavailable", Refusal.DATABASE)
                failures.append((ticket.future, unavailable))
            _settle(failures)
            return
        except Exception:
            if len(tickets) == 1:
                logger.exception("storing %d reports failed", len(reports))
                refused = IngestUnavailable("the database refused the reports", Refusal.DATABASE)
                _settle([(tickets[0].future, refused)])
                return
            # One poisonous ticket must not fail its neighbours: store them one ticket at a time.
            for ticket in tickets:
                self._commit([ticket])
            return
        self._outage.succeeded()
        self._instruments.commit_seconds.observe(time.perf_counter() - began)
        self._instruments.reports_stored(reports, results)
        outcomes: list[Outcome] = []
        offset = 0
        for ticket in tickets:
            outcomes.append((ticket.future, results[offset : offset + len(ticket.reports)]))
            offset += len(ticket.reports)
        _settle(outcomes)

    def _write(self, reports: list[Report], tickets: list[Ticket]) -> list[WriteResult]:
        with write_transaction(self._engine) as connection:
            results = write_reports(connection, reports, now_micros())
            # A transaction may have waited long for the database (a lock, an outage): a request
            # that gave up or passed its deadline meanwhile was answered 503, so its reports must
            # not be committed.
            if any(future.done() for _, future, _ in tickets):
                raise _Abandoned
            return results


# A ticket's future and what it is to be told: its reports' results, or why they were not stored.
Outcome = tuple[asyncio.Future[list[WriteResult]], list[WriteResult] | Exception]


def _settle(outcomes: list[Outcome]) -> None:
    """From the writer thread: tell every waiting request its outcome, in one callback on the
    event loop for the whole transaction (a callback per request made a call and a wake-up each)."""
    if outcomes:
        outcomes[0][0].get_loop().call_soon_threadsafe(_settle_on_loop, outcomes)


def _settle_on_loop(outcomes: list[Outcome]) -> None:
    for future, outcome in outcomes:
        if future.done():
            continue  # the request gave up (a cancelled future); nobody waits for this
        if isinstance(outcome, Exception):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


class _Abandoned(Exception):
    """A request of the batch gave up before its transaction committed."""
