"""The ledger writer's own process: the transactions of :class:`~.writer_process.ProcessWriter`.

``python -m sidekiq_supervisor.services.writer_child SOCKET FLAGS`` is started by the service
with two descriptors: one end of a socket pair, and a file of gave-up flags both map. The first
frame names the ledger; each next one is a batch of tickets, committed by ``commit_tickets`` and
answered with each ticket's outcome. Frames are length-prefixed pickles, both ways.

This module holds what both ends of the socket agree on (the frame, the ledger's address, a
ticket as it crosses, the answer), and imports no more than the transaction needs: neither the
metrics nor the settings nor the web layer, which would cost the child megabytes it never uses.

The child ignores SIGINT and SIGTERM (a terminal's Ctrl-C and systemd reach every process of the
group): it ends when the service closes its socket, after the transaction under way, so a
graceful stop commits what was acknowledged and a killed service leaves no writer behind.
"""

from __future__ import annotations

import copyreg
import dataclasses
import logging
import mmap
import pickle
import signal
import socket
import struct
import sys
from collections.abc import Sequence
from typing import IO, Any, NamedTuple

from sqlalchemy import Engine

from sidekiq_supervisor.domain.model import Report, Timeline
from sidekiq_supervisor.services.garbage import settle_garbage_collector
from sidekiq_supervisor.services.outage_log import OutageLog
from sidekiq_supervisor.services.report_commit import TicketOutcome, commit_tickets
from sidekiq_supervisor.store.engine import ledger_schema, make_engine
from sidekiq_supervisor.store.records import StoredJob
from sidekiq_supervisor.store.writer import WriteResult

__all__ = ["FRAME_HEADER", "Answer", "Crossed", "LedgerAddress", "frame", "main", "serve_transactions"]

logger = logging.getLogger(__name__)

# A frame's length, ahead of its pickle.
FRAME_HEADER = struct.Struct("!I")


def frame(message: object) -> bytes:
    """``message`` as a frame of the socket between the service and its child."""
    payload = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return FRAME_HEADER.pack(len(payload)) + payload


def _pickled_by_fields(cls: type[Any]) -> None:
    """Pickle ``cls`` (a dataclass) as its constructor and field values: a slotted dataclass's
    own state methods set each field from Python, twice as slow on the loop (6.1 against 2.9 us a
    report to read back an answer)."""
    names = tuple(field.name for field in dataclasses.fields(cls))

    def reduce(value: Any) -> tuple[type[Any], tuple[Any, ...]]:
        return cls, tuple(getattr(value, name) for name in names)

    copyreg.pickle(cls, reduce)


for _crossing in (Report, WriteResult, StoredJob, Timeline):
    _pickled_by_fields(_crossing)


class LedgerAddress(NamedTuple):
    """What the child needs to open the ledger the service opened."""

    url: str
    sqlite_synchronous: str
    schema: str | None

    @classmethod
    def of(cls, engine: Engine, sqlite_synchronous: str) -> LedgerAddress:
        """The address of ``engine``'s ledger (its password included: the child connects too)."""
        url = engine.url.render_as_string(hide_password=False)
        return cls(url, sqlite_synchronous, ledger_schema(engine))


class Crossed(NamedTuple):
    """A ticket as the child sees it: its reports, and its slot among the gave-up flags."""

    slot: int
    reports: Sequence[Report]


# The child's answer to one batch: each ticket's outcome by slot, and each transaction's seconds.
Answer = tuple[list[tuple[int, TicketOutcome]], list[float]]


class _ChildLog:
    """The child's :class:`~sidekiq_supervisor.services.report_commit.CommitLog`: outages logged
    where they happen, commit times sent back with the answer for the service's metrics."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._outage = OutageLog(logger, "the database (storing reports)")

    def committed(self, reports: list[Report], results: list[WriteResult], seconds: float) -> None:
        self._outage.succeeded()
        self.seconds.append(seconds)

    def unavailable(self, error: BaseException) -> None:
        self._outage.failed(error)


def serve_transactions(sock: socket.socket, gave_up: mmap.mmap) -> None:
    """The child's life: open the ledger the first frame names, then commit each batch the
    service sends and answer, until the socket closes."""
    stream = sock.makefile("rb")
    address: LedgerAddress | None = _read_frame(stream)
    if address is None:
        return  # the service stopped before it said which ledger
    engine = make_engine(
        address.url, sqlite_synchronous=address.sqlite_synchronous, schema=address.schema, pool_size=1
    )
    with engine.connect():
        pass  # the ledger opens, or the child fails here, before it says it is ready
    settle_garbage_collector()
    log = _ChildLog()
    sock.sendall(frame(None))  # ready
    try:
        tickets: list[Crossed] | None
        while (tickets := _read_frame(stream)) is not None:
            outcomes = commit_tickets(engine, tickets, lambda ticket: gave_up[ticket.slot] != 0, log)
            answer: Answer = ([(ticket.slot, outcome) for ticket, outcome in outcomes], log.seconds)
            log.seconds = []
            sock.sendall(frame(answer))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the service is gone; what it sent is committed or not, and nobody waits
    finally:
        engine.dispose()


def _read_frame(stream: IO[bytes]) -> Any:
    """The next frame's message, or None once the service closed its end (it never sends None)."""
    header = stream.read(FRAME_HEADER.size)
    if not header:
        return None
    (size,) = FRAME_HEADER.unpack(header)
    return pickle.loads(stream.read(size))


def main(arguments: list[str]) -> None:
    """The child's entry: ``python -m sidekiq_supervisor.services.writer_child SOCKET FLAGS``,
    two descriptors the service passed."""
    # Ctrl-C in a terminal and systemd's stop reach every process of the group: the child ends
    # when the service closes its socket, after the transaction under way, not before.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    socket_fd, flags_fd = map(int, arguments)
    with socket.socket(fileno=socket_fd) as sock, mmap.mmap(flags_fd, 0) as gave_up:
        serve_transactions(sock, gave_up)


if __name__ == "__main__":
    main(sys.argv[1:])
