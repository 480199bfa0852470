"""Engines for the ledger: SQLite tuned for a single group-committing writer, or PostgreSQL."""

from __future__ import annotations

import hashlib
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

# Execution option naming the PostgreSQL schema that holds this engine's ledger (an app's own).
LEDGER_SCHEMA = "ledger_schema"
# Execution option that makes a SQLite transaction take the write lock when it begins, so that
# concurrent writer processes wait on busy_timeout instead of failing on a lock upgrade.
IMMEDIATE = "sqlite_immediate"


def make_engine(
    database_url: str, *, sqlite_synchronous: str = "FULL", schema: str | None = None, pool_size: int = 10
) -> Engine:
    """An engine for ``database_url``; SQLite files get WAL, a busy timeout and the sync level.

    On PostgreSQL, ``schema`` puts the ledger in that schema (an app's own, beside the default
    app's), and ``pool_size`` bounds the connections kept open (as many more may open under load).
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        # psycopg prepares a statement after its fifth run, and PostgreSQL may then keep a generic
        # plan made while the table was small: the writer's row lookups stayed sequential scans
        # (29 us per event instead of 3 at 10,000 jobs). Its statements vary in length anyway.
        connect_args: dict[str, Any] = (
            {"prepare_threshold": None} if url.get_driver_name() == "psycopg" else {}
        )
        # JIT compiling took 20-50 ms of a 100-130 ms filtered read at 10 million jobs: the
        # planner's cost of reading a filter's matches crosses jit_above_cost, and the queries
        # here are short, so compiling never pays for itself. Options the URL sets come first.
        options = [str(url.query.get("options", "")), "-c jit=off"]
        if schema is not None:
            # Unqualified names (every statement of the store and the migrations) resolve in the
            # app's schema alone, set as the session starts: with another schema in the path, its
            # tables would stand in for the ones this schema lacks (the migrations' version table).
            options.append(f"-c search_path={quote_identifier(schema)}")
        connect_args["options"] = " ".join(option for option in options if option)
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args=connect_args,
            execution_options={LEDGER_SCHEMA: schema},
        )
    engine = create_engine(url)
    _tune_sqlite(engine, sqlite_synchronous.upper())
    return engine


def quote_identifier(name: str) -> str:
    """``name`` as a PostgreSQL identifier in double quotes."""
    return '"' + name.replace('"', '""') + '"'


def ledger_schema(engine: Engine) -> str | None:
    """The PostgreSQL schema of ``engine``'s ledger, when it is not the database's own."""
    schema: str | None = engine.get_execution_options().get(LEDGER_SCHEMA)
    return schema


def lock_key(engine: Engine, key: int) -> int:
    """PostgreSQL advisory lock ``key``, made this ledger's own: apps whose ledgers share a
    database (one schema each) lead, prune and partition independently."""
    schema = ledger_schema(engine)
    if schema is None:
        return key
    mixed = (key ^ int.from_bytes(hashlib.blake2b(schema.encode(), digest_size=8).digest())) & (2**64 - 1)
    return mixed - 2**64 if mixed >= 2**63 else mixed  # PostgreSQL's bigint is signed


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
