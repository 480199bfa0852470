"""Alembic, driven from code: ``serve`` and ``db upgrade`` bring the schema to head; everything
else only checks that it is there (``require_head``), since a read must never change a schema."""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

from sidekiq_supervisor.store.engine import ledger_schema, quote_identifier
from sidekiq_supervisor.store.partitions import ensure_partitions_quietly

MIGRATIONS = Path(__file__).with_name("migrations")


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration that migrates through ``engine``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or migrate the schema; a no-op when it is already at ``revision``. On PostgreSQL it
    then creates the upcoming daily partitions of ``job_events`` that are missing (a ledger
    started again after a pause may lack today's)."""
    schema = ledger_schema(engine)
    if schema is not None:
        _create_schema(engine, schema)
    command.upgrade(alembic_config(engine), revision)
    ensure_partitions_quietly(engine, time.time_ns() // 1000)


def _create_schema(engine: Engine, schema: str) -> None:
    # Through a connection of its own: the engine's sessions start with the schema as their whole
    # search path, which must exist by then.
    creator = create_engine(engine.url, poolclass=NullPool)
    try:
        with creator.begin() as connection:
            connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
    finally:
        creator.dispose()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at, or ``None`` before the first migration."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class SchemaNotCurrent(RuntimeError):
    """The database's schema is not the one this version of the code reads and writes."""


def head_revision() -> str:
    """The newest revision the migrations know."""
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    assert head is not None  # the migrations folder ships with the package
    return head


def require_head(engine: Engine) -> None:
    """Raise ``SchemaNotCurrent``, saying what to run, unless the schema is at head."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        found = "has no schema yet" if current is None else f"is at schema revision {current}"
        raise SchemaNotCurrent(
            f"the database {found}, not {head}: run `sidekiq-supervisor db upgrade` (or `serve`, which does)"
        )
