"""Reads that give up at a time limit, on either engine.

PostgreSQL cancels a statement that runs past ``statement_timeout``. SQLite has no timeout, but
``sqlite3.Connection.interrupt()``, called from another thread, stops the statement in progress:
a watch thread calls it at the limit, and again every few milliseconds until the read ends.
SQLite's progress handler would stop it from inside, but it calls back into Python every few
thousand instructions, taking the interpreter's lock from the reading thread each time; the
arguments filter was made four times faster by no longer doing that (docs/performance.md, "The
arguments filter checked by SQLite itself").
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

# PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout.
QUERY_CANCELED = "57014"

T = TypeVar("T")


def within_budget(connection: Connection, budget_ms: int, read: Callable[[], T]) -> T | None:
    """``read()`` if it finishes within ``budget_ms``, else ``None``.

    It runs in a transaction of its own, so that a cancelled statement (and PostgreSQL's
    ``SET LOCAL`` timeout) ends with it; the connection must not be in a transaction already.
    """
    if connection.dialect.name == "sqlite":
        return _sqlite_within(connection, budget_ms, read)
    try:
        with connection.begin():
            connection.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, int(budget_ms))}")
            return read()
    except OperationalError as error:
        if getattr(error.orig, "sqlstate", None) != QUERY_CANCELED:
            raise
    return None


def _sqlite_within(connection: Connection, budget_ms: int, read: Callable[[], T]) -> T | None:
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    done = threading.Event()
    watch = threading.Thread(target=_interrupt_past, args=(driver, budget_ms / 1000, done), daemon=True)
    watch.start()
    try:
        with connection.begin():
            return read()
    except OperationalError as error:
        if getattr(error.orig, "sqlite_errorcode", None) != sqlite3.SQLITE_INTERRUPT:
            raise
    finally:
        # Once joined, the watch cannot interrupt a statement of the connection's next user.
        done.set()
        watch.join()
    return None


# How often the watch interrupts again past the limit.
REINTERRUPT_SECONDS = 0.005


def _interrupt_past(driver: sqlite3.Connection, limit_seconds: float, done: threading.Event) -> None:
    """Interrupt ``driver`` once ``limit_seconds`` have passed, and again every few milliseconds
    until ``done``: an interrupt that lands when no statement runs is a no-op, and a read may
    start another statement after it (a summary takes two)."""
    if done.wait(max(0.001, limit_seconds)):
        return
    while True:
        driver.interrupt()
        if done.wait(REINTERRUPT_SECONDS):
            return
