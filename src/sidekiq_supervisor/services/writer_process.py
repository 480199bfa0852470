"""The group-commit writer with its transactions in a process of its own.

In one process the writer thread and the event loop take turns holding the interpreter's lock:
``pysqlite`` lets go of it around every step of a statement, and the loop, busy with requests,
keeps it, so a transaction spent more time waiting for the lock than working (docs/performance.md,
"Ingest"). :class:`ProcessWriter` keeps everything the requests see on the loop (the queue, its
limit, the deadlines, the answers) and runs ``commit_tickets`` in a child process with an engine of
its own, so that the loop and the transactions each use a core.

The two talk over a socket pair: the loop sends a batch of tickets (pickled, length-prefixed) and
reads back each ticket's outcome. The loop sends what waits when the child answers, so each
transaction takes all that gathered during the last one; when more than a batch waits, the next one
waits in the socket, and the child goes on without waiting for the loop's turn. (Handing a batch
over as soon as reports wait split PostgreSQL's transactions: a third of the rate lost.) A request
that gives up while its ticket is in the child is marked in a flag both map (an unlinked temporary
file), which the child reads before it commits, as the thread reads the ticket's future. The child
is a plain ``python -m`` of :mod:`.writer_child`, given the two descriptors: no multiprocessing
machinery, no import of the service's own entry point, nor of this module's metrics.
"""

from __future__ import annotations

import asyncio
import logging
import math
import mmap
import os
import pickle
import socket
import subprocess
import sys
import tempfile
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO, cast

from sqlalchemy import Engine

from sidekiq_supervisor.domain.model import Report
from sidekiq_supervisor.services import writer_child
from sidekiq_supervisor.services.prometheus.instruments import Instruments
from sidekiq_supervisor.services.report_commit import Refusal, Refused
from sidekiq_supervisor.services.report_writer import GroupCommitWriter, Outcome, Ticket, WriteResult
from sidekiq_supervisor.services.writer_child import FRAME_HEADER, Answer, Crossed, LedgerAddress, frame

__all__ = ["ChildFailed", "ProcessWriter"]

logger = logging.getLogger(__name__)

# A batch in a transaction, and, under a load of more than a batch, the next one in the socket.
BATCHES_IN_FLIGHT = 2
# How long a stopping service waits for its child to finish the transaction under way.
CHILD_EXIT_SECONDS = 30
WRITER_LOST = Refused("the ledger writer's process stopped", Refusal.DATABASE)


class ProcessWriter(GroupCommitWriter):
    """A :class:`GroupCommitWriter` whose transactions run in a child process."""

    def __init__(
        self,
        engine: Engine,
        *,
        sqlite_synchronous: str = "FULL",
        batch_size: int = 1000,
        queue_limit: int = 50_000,
        deadline_seconds: float = math.inf,
        instruments: Instruments | None = None,
    ) -> None:
        super().__init__(
            engine,
            batch_size=batch_size,
            queue_limit=queue_limit,
            deadline_seconds=deadline_seconds,
            instruments=instruments,
        )
        self._address = LedgerAddress.of(engine, sqlite_synchronous)
        # A batch holds at most batch_size tickets (each has a report at least), so the batches in
        # flight never need more slots than this.
        self._slots = BATCHES_IN_FLIGHT * batch_size
        self._free_slots = list(range(self._slots))
        self._flags_file: IO[bytes] | None = None  # the gave-up flags, shared with each child
        self._gave_up: mmap.mmap | None = None
        self._slot_of: dict[int, int] = {}  # id(ticket.future) -> its slot, while in flight
        self._in_flight: deque[list[Ticket]] = deque()
        self._channel: _Channel | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._respawn: asyncio.Future[None] | None = None  # held: the loop keeps weak references

    async def start(self) -> None:
        """Start the child process, then accept reports."""
        self._flags_file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by stop)
        self._flags_file.truncate(self._slots)
        self._gave_up = mmap.mmap(self._flags_file.fileno(), self._slots)
        await super().start()
        await self._spawn()

    async def stop(self) -> None:
        """Refuse new reports, let the child commit what is pending, then end it."""
        if self._respawn is not None:
            await self._respawn  # a child that died is replaced before the queue is drained
        await super().stop()
        self._stopped = True
        channel, self._channel = self._channel, None
        if channel is not None:
            channel.close()  # the child ends once it reads the end of its socket
        process, self._process = self._process, None
        if process is not None:
            try:
                await asyncio.to_thread(process.wait, CHILD_EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                logger.error("the ledger writer's process did not end; killing it")
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._flags_file is not None:
            self._flags_file.close()

    async def _spawn(self) -> None:
        """Start a child and wait until it has opened the ledger: until then, ``serve`` is not
        ready (its health check waits for the lifespan), and no batch waits on its imports."""
        assert self._flags_file is not None
        if self._process is not None:
            self._process.poll()  # reap the child that died
        ours, theirs = socket.socketpair()
        descriptors = (theirs.fileno(), self._flags_file.fileno())
        # The child imports this package from where the service did, whatever its path says.
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        process = subprocess.Popen(
            [sys.executable, "-m", writer_child.__name__, *map(str, descriptors)],
            pass_fds=descriptors,
            env={**os.environ, "PYTHONPATH": path},
        )
        theirs.close()
        channel = _Channel(self._answered, self._lost)
        # The transport buffers what the socket does not take at once: the loop never blocks on
        # a child still busy with the batch before.
        await asyncio.get_running_loop().connect_accepted_socket(lambda: channel, sock=ours)
        channel.send(self._address)  # first, before any batch: the URL stays out of `ps`
        self._process = process
        await channel.ready
        self._channel = channel
        self._begin_transaction()

    async def _replace(self) -> None:
        """Start another child after one died, trying again each second while the service runs."""
        while not self._stopped:
            try:
                await self._spawn()
                return
            except ChildFailed:
                logger.error("the ledger writer's process failed to start; trying again in 1 s")
                await asyncio.sleep(1)

    def _begin_transaction(self) -> None:
        """On the loop: send the child the pending reports, unless two batches are in flight."""
        channel = self._channel
        while channel is not None and len(self._in_flight) < BATCHES_IN_FLIGHT and self._pending:
            with self._lock:
                tickets = self._take_batch()
            crossed = []
            gave_up = self._gave_up
            assert gave_up is not None
            for ticket in tickets:
                slot = self._free_slots.pop()
                gave_up[slot] = 0
                self._slot_of[id(ticket.future)] = slot
                crossed.append(Crossed(slot, ticket.reports))
            self._in_flight.append(tickets)
            self._track_in_flight()
            channel.send(crossed)

    def _abandon(self, ticket: Ticket) -> None:
        slot = self._slot_of.get(id(ticket.future))
        if slot is not None and self._gave_up is not None:
            self._gave_up[slot] = 1

    def _answered(self, answer: Answer) -> None:
        """On the loop: the child's outcomes of the oldest batch in flight."""
        outcomes, seconds = answer
        tickets = self._release(self._in_flight.popleft())
        for elapsed in seconds:
            self._instruments.commit_seconds.observe(elapsed)
        by_slot = dict(outcomes)
        settled: list[Outcome] = []
        reports: list[Report] = []
        results: list[WriteResult] = []
        for slot, ticket in tickets:
            # A ticket without an outcome gave up before its transaction: its future is done.
            outcome = by_slot.get(slot)
            if outcome is None:
                continue
            settled.append((ticket.future, outcome))
            if not isinstance(outcome, Refused):
                reports.extend(ticket.reports)
                results.extend(outcome)
        if reports:
            self._instruments.reports_stored(reports, results)
        self._batch_done(settled)

    def _lost(self, channel: _Channel) -> None:
        """On the loop: the child's socket closed while the service runs: it died (killed, out of
        memory). Its batches are refused (503: the client sends them again) and another starts."""
        if self._stopped or channel is not self._channel:
            return  # stop() closed it, or a child that never got ready (its _spawn raises)
        logger.error("the ledger writer's process ended unexpectedly; starting another")
        self._channel = None
        settled: list[Outcome] = []
        while self._in_flight:
            batch = self._release(self._in_flight.popleft())
            settled += [(ticket.future, WRITER_LOST) for _, ticket in batch]
        self._batch_done(settled)
        self._respawn = asyncio.ensure_future(self._replace())

    def _release(self, tickets: list[Ticket]) -> list[tuple[int, Ticket]]:
        """The batch's tickets with their slots, which are free again."""
        slotted = [(self._slot_of.pop(id(ticket.future)), ticket) for ticket in tickets]
        self._free_slots.extend(slot for slot, _ in slotted)
        return slotted

    def _batch_done(self, settled: list[Outcome]) -> None:
        self._track_in_flight()
        self._begin_transaction()
        self._committed(settled)

    def _track_in_flight(self) -> None:
        """The base class's view of the transaction under way: the tickets in the child."""
        self._taken = [ticket for batch in self._in_flight for ticket in batch]
        self._in_transaction = bool(self._in_flight)


class _Channel(asyncio.Protocol):
    """The loop's end of the socket to the child: length-prefixed pickles both ways."""

    def __init__(self, answered: Callable[[Answer], None], lost: Callable[[_Channel], None]) -> None:
        self._answered = answered
        self._lost = lost
        # The child's first frame says it opened the ledger.
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)

    def send(self, message: object) -> None:
        assert self._transport is not None
        self._transport.write(frame(message))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= FRAME_HEADER.size:
            (size,) = FRAME_HEADER.unpack_from(buffer, start)
            end = start + FRAME_HEADER.size + size
            if len(buffer) < end:
                break
            message = pickle.loads(memoryview(buffer)[start + FRAME_HEADER.size : end])
            if self.ready.done():
                self._answered(message)
            else:
                self.ready.set_result(None)
            start = end
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ChildFailed("the ledger writer's process ended as it started"))
        self._lost(self)


class ChildFailed(RuntimeError):
    """The writer's child process ended before it opened the ledger."""
