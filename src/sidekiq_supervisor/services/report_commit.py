"""The ledger's transaction for a batch of requests' reports, and why reports are refused.

``commit_tickets`` is the same transaction on the group-commit writer's thread
(:mod:`.report_writer`) and in the writer's own process (:mod:`.writer_child`). What it returns
is plain data (results, or a :class:`Refused`), so that it crosses between processes. This module
imports neither the metrics nor the settings: the writer's child process loads it, and each of
those cost the child megabytes it never uses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import NamedTuple, Protocol, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import Report
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.writer import WriteResult, write_reports

__all__ = ["REFUSED", "CommitLog", "Pending", "Refusal", "Refused", "TicketOutcome", "commit_tickets"]

logger = logging.getLogger(__name__)


class Refusal(StrEnum):
    """Why reports were answered 503 (``supervisor_reports_refused_total{reason}``)."""

    OVERLOADED = "overloaded"  # the writer's queue was full
    TIMEOUT = "timeout"  # not committed within the request deadline
    DATABASE = "database"  # the database was unavailable or refused the batch
    STOPPING = "stopping"  # the service was shutting down


class Refused(NamedTuple):
    """Why a ticket's reports were not stored: plain data, so that it crosses to another process."""

    message: str
    reason: Refusal


# What the request of one ticket is told: its reports' results, or why they were not stored.
TicketOutcome = list[WriteResult] | Refused


class CommitLog(Protocol):
    """Who hears how transactions went: the writer's metrics and its outage log."""

    def committed(self, reports: list[Report], results: list[WriteResult], seconds: float) -> None:
        """A transaction stored ``reports`` in ``seconds``."""

    def unavailable(self, error: BaseException) -> None:
        """The database failed a transaction (unreachable, locked)."""


class Pending(Protocol):
    """A request's reports waiting for a transaction: a :class:`Ticket` on the writer thread, or
    what crossed to a writer process."""

    @property
    def reports(self) -> Sequence[Report]:
        """The reports to store, all or none."""
        ...


PendingT = TypeVar("PendingT", bound=Pending)


def commit_tickets(
    engine: Engine, tickets: list[PendingT], gave_up: Callable[[PendingT], bool], log: CommitLog
) -> list[tuple[PendingT, TicketOutcome]]:
    """Store the tickets' reports in one transaction; each ticket with what its request is told.

    A ticket whose request ``gave_up`` (it was answered 503, or left) is left out, also when it
    gives up while the transaction runs. One ticket that fails does not fail its neighbours.
    """
    tickets = [ticket for ticket in tickets if not gave_up(ticket)]
    if not tickets:
        return []
    reports = [report for ticket in tickets for report in ticket.reports]
    began = time.perf_counter()
    try:
        with write_transaction(engine) as connection:
            results = write_reports(connection, reports, now_micros())
            # A transaction may have waited long for the database (a lock, an outage): a request
            # that gave up or passed its deadline meanwhile was answered 503, so its reports must
            # not be committed.
            if any(gave_up(ticket) for ticket in tickets):
                raise _Abandoned
    except _Abandoned:
        return commit_tickets(engine, tickets, gave_up, log)  # without those who gave up meanwhile
    except OperationalError as exc:
        # The database failed (unreachable, locked), not a report: retrying each ticket alone
        # would only make every waiting request wait out the failure once more.
        log.unavailable(exc)
        unavailable = Refused("the database is unavailable", Refusal.DATABASE)
        return [(ticket, unavailable) for ticket in tickets]
    except Exception:
        if len(tickets) == 1:
            logger.exception("storing %d reports failed", len(reports))
            return [(tickets[0], REFUSED)]
        # One poisonous ticket must not fail its neighbours: store them one ticket at a time.
        return [outcome for ticket in tickets for outcome in commit_tickets(engine, [ticket], gave_up, log)]
    log.committed(reports, results, time.perf_counter() - began)
    outcomes: list[tuple[PendingT, TicketOutcome]] = []
    offset = 0
    for ticket in tickets:
        outcomes.append((ticket, results[offset : offset + len(ticket.reports)]))
        offset += len(ticket.reports)
    return outcomes


REFUSED = Refused("the database refused the reports", Refusal.DATABASE)


class _Abandoned(Exception):
    """A request of the batch gave up before its transaction committed."""
