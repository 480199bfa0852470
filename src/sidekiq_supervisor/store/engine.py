"""Engines for the ledger: SQLite tuned for a single group-committing writer, or PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url

from sidekiq_supervisor.store.text_search import (
    SQLITE_FOLD_FUNCTION,
    SQLITE_FUNCTION,
    casefold_contains,
    casefold_text,
)

# Execution option that makes a SQLite transaction take the write lock when it begins, so that
# concurrent writer processes wait on busy_timeout instead of failing on a lock upgrade.
IMMEDIATE = "sqlite_immediate"


def make_engine(database_url: str, *, sqlite_synchronous: str = "FULL") -> Engine:
    """An engine for ``database_url``; SQLite files get WAL, a busy timeout and the sync level."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        # psycopg prepares a statement after its fifth run, and PostgreSQL may then keep a generic
        # plan made while the table was small: the writer's row lookups stayed sequential scans
        # (29 us per event instead of 3 at 10,000 jobs). Its statements vary in length anyway.
        connect_args = {"prepare_threshold": None} if url.get_driver_name() == "psycopg" else {}
        return create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=10, connect_args=connect_args
        )
    engine = create_engine(url)
    _tune_sqlite(engine, sqlite_synchronous.upper())
    return engine


def _tune_sqlite(engine: Engine, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite opens transactions on its own schedule; take that over so BEGIN is explicit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()
        dbapi_connection.create_function(SQLITE_FUNCTION, 2, casefold_contains, deterministic=True)
        # Migration 0002's triggers fold the arguments with it on every write to jobs.
        dbapi_connection.create_function(SQLITE_FOLD_FUNCTION, 1, casefold_text, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success and rolled back on error.

    On SQLite it takes the write lock at BEGIN (waiting up to the busy timeout).
    """
    with engine.connect().execution_options(**{IMMEDIATE: True}) as connection, connection.begin():
        yield connection
