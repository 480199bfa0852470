"""Group commit: reports from concurrent requests share transactions, one writer per app.

Requests hand their reports to :class:`GroupCommitWriter` and wait. A single writer thread takes
everything that is pending, stores it in one transaction, and wakes the waiters only after the
commit, so a 2xx always means stored. While one transaction runs, the next batch gathers, and the
writer thread takes it as soon as the transaction ends, without waiting for the event loop's turn.

A report not committed within the writer's deadline is refused (``IngestUnavailable``) and left
out of its transaction, so the client's 503 is the truth. One watchdog task checks the deadlines
of all waiting reports a few times a second: a timer per request cost more CPU than storing it.

``commit_tickets`` (:mod:`.report_commit`) is the transaction itself, which
:class:`~.writer_process.ProcessWriter` (``serve``'s default) runs in a child process instead of
this thread.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from sqlalchemy import Engine

from sidekiq_supervisor.domain.model import Report
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.services.prometheus.instruments import Instruments
from sidekiq_supervisor.services.report_commit import REFUSED, Refusal, Refused, TicketOutcome, commit_tickets
from sidekiq_supervisor.store.writer import WriteResult

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


# A ticket's future and its outcome, as the writer thread hands them to the loop.
Outcome = tuple[asyncio.Future[list[WriteResult]], TicketOutcome]


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
        # The queue is shared with the writer thread, which takes the next batch itself as soon as
        # a transaction ends: the lock guards the queue, its count and whether a transaction runs.
        self._lock = threading.Lock()
        self._pending: deque[Ticket] = deque()
        self._pending_reports = 0
        self._in_transaction = False
        self._taken: list[Ticket] = []  # the batch of the transaction under way
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._begin_scheduled = False
        self._idle = asyncio.Event()  # set when a run of transactions ends with nothing pending
        self._watchdog: asyncio.Task[None] | None = None
        self._accepting = False
        self._outage = OutageLog(logger, "the database (storing reports)")

    @property
    def health(self) -> WriterHealth:
        """Whether the writer runs, how full its queue is, and whether its transaction is overdue.

        Read from memory, never waiting; call it on the writer's event loop (deadlines are in its
        time).
        """
        now = asyncio.get_running_loop().time()
        overdue = any(deadline <= now for _, _, deadline in self._taken)
        # Accepting from start() until stop(): there is no task of its own that could die between.
        return WriterHealth(self._accepting, self._pending_reports, self._queue_limit, overdue)

    async def start(self) -> None:
        """Accept reports (and start the deadline watchdog, when there is a deadline)."""
        self._loop = asyncio.get_running_loop()
        self._accepting = True
        if math.isfinite(self._deadline_seconds):
            self._watchdog = asyncio.create_task(self._refuse_overdue(), name="ledger-writer-deadline")

    async def stop(self) -> None:
        """Refuse new reports, commit what is pending, then stop."""
        self._accepting = False
        while True:
            self._begin_transaction()
            if not self._in_transaction:
                break  # nothing pending, nothing under way
            self._idle.clear()
            await self._idle.wait()
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
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[WriteResult]] = loop.create_future()
        ticket = Ticket(reports, future, loop.time() + self._deadline_seconds)
        with self._lock:
            if self._pending_reports + len(reports) > self._queue_limit:
                raise IngestUnavailable("too many reports are waiting to be stored", Refusal.OVERLOADED)
            self._pending.append(ticket)
            self._pending_reports += len(reports)
            idle = not self._in_transaction
        if idle and not self._begin_scheduled:
            # Once the loop has run what is ready, so that the requests it holds share the batch;
            # a transaction under way takes the ticket itself when it ends.
            self._begin_scheduled = True
            loop.call_soon(self._begin_scheduled_transaction)
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
        with self._lock:
            try:
                self._pending.remove(ticket)
            except ValueError:
                # A transaction has it: it is left out, or stored or failed with its batch.
                self._abandon(ticket)
                return
            self._pending_reports -= len(ticket.reports)

    def _abandon(self, ticket: Ticket) -> None:
        """A taken ticket's request gave up; its transaction leaves it out unless it is
        committing. On the writer thread the ticket's done future says so already."""

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
            overdue: list[Ticket] = []
            with self._lock:
                while self._pending and self._pending[0].deadline <= now:
                    overdue.append(self._pending.popleft())
                    self._pending_reports -= len(overdue[-1].reports)
            for _, future, _ in overdue:
                future.set_exception(IngestUnavailable(refusal, Refusal.TIMEOUT))
            # A transaction that already holds a late ticket leaves it out (see _write).
            for ticket in self._taken:
                if ticket.deadline <= now and not ticket.future.done():
                    ticket.future.set_exception(IngestUnavailable(refusal, Refusal.TIMEOUT))
                    self._abandon(ticket)

    def _begin_scheduled_transaction(self) -> None:
        self._begin_scheduled = False
        self._begin_transaction()

    def _begin_transaction(self) -> None:
        """On the loop: start the writer thread on the pending reports, unless it is under way."""
        with self._lock:
            if self._in_transaction or not self._pending:
                return
            self._in_transaction = True
            self._taken = self._take_batch()
        self._executor.submit(self._transactions, self._taken)

    def _transactions(self, tickets: list[Ticket]) -> None:
        """On the writer thread: store batch after batch while reports wait, each batch's outcomes
        handed to the loop as its transaction ends. Taking the next batch here, not on the loop,
        saves it waiting for the loop's turn (some milliseconds while the loop serves requests)."""
        assert self._loop is not None
        while True:
            try:
                outcomes = self._commit(tickets)
            except BaseException:
                logger.exception("the writer failed on %d requests' reports", len(tickets))
                outcomes = [(ticket.future, REFUSED) for ticket in tickets]
            with self._lock:
                tickets = self._take_batch() if self._pending else []
                self._taken = tickets
                self._in_transaction = bool(tickets)
            self._loop.call_soon_threadsafe(self._committed, outcomes)
            if not tickets:
                return

    def _committed(self, outcomes: list[Outcome]) -> None:
        """On the loop: answer a transaction's requests (and wake stop() after the last one)."""
        _settle(outcomes)
        if not self._in_transaction:
            self._idle.set()

    def _take_batch(self) -> list[Ticket]:
        """The oldest pending tickets, up to the batch size (call it holding the lock)."""
        tickets = [self._pending.popleft()]
        size = len(tickets[0].reports)
        while self._pending and size + len(self._pending[0].reports) <= self._batch_size:
            ticket = self._pending.popleft()
            tickets.append(ticket)
            size += len(ticket.reports)
        self._pending_reports -= size
        return tickets

    def _commit(self, tickets: list[Ticket]) -> list[Outcome]:
        """On the writer thread: store the tickets' reports; what each waiting request is told."""
        outcomes = commit_tickets(self._engine, tickets, _gave_up, self)
        return [(ticket.future, outcome) for ticket, outcome in outcomes]

    def committed(self, reports: list[Report], results: list[WriteResult], seconds: float) -> None:
        """A transaction stored ``reports`` (part of :class:`CommitLog`)."""
        self._outage.succeeded()
        self._instruments.commit_seconds.observe(seconds)
        self._instruments.reports_stored(reports, results)

    def unavailable(self, error: BaseException) -> None:
        """The database failed a transaction (part of :class:`CommitLog`)."""
        self._outage.failed(error)


def _gave_up(ticket: Ticket) -> bool:
    return ticket.future.done()


def _settle(outcomes: list[Outcome]) -> None:
    """Tell every waiting request its outcome: one callback on the loop for a whole transaction
    (a callback per request made a call and a wake-up each)."""
    for future, outcome in outcomes:
        if future.done():
            continue  # the request gave up (a cancelled future); nobody waits for this
        if isinstance(outcome, Refused):
            future.set_exception(IngestUnavailable(outcome.message, outcome.reason))
        else:
            future.set_result(outcome)
