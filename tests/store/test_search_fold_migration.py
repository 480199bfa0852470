"""Migration 0017: SQLite's search triggers fold ASCII arguments in SQL and the rest in Python.

The index's text must stay what ``casefold_text`` makes, whichever trigger wrote it: a contentless
FTS5 table forgets a row only when told the very text it indexed, so a row indexed by 0002's
triggers and deleted under 0017's (or the other way round) must leave no trigram behind.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, text

from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.services.ledger import JobFilter, Ledger
from sidekiq_supervisor.store.engine import make_engine, write_transaction
from sidekiq_supervisor.store.migrate import alembic_config, upgrade
from sidekiq_supervisor.store.text_search import trigram_query
from sidekiq_supervisor.store.writer import write_reports

T0 = 1_700_000_000_000_000
# ASCII in mixed case (folded by SQLite), and text only the Python function folds as ILIKE does.
ARGUMENTS = {
    "ascii": '["Customer-42@Example.COM"]',
    "latin": '["STRAßE Ärger"]',
    "greek": '["ΣΊΣΥΦΟΣ"]',
    "dotted": '["İstanbul"]',
}
NEEDLES = {"ascii": "example.com", "latin": "straße ärger", "greek": "σίσυφοσ", "dotted": "istanbul"}


@pytest.fixture
def sqlite_engine(sqlite_template: Path, tmp_path: Path) -> Iterator[Engine]:
    path = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, path)
    engine = make_engine(f"sqlite:///{path}")
    yield engine
    engine.dispose()


def write_jobs(engine: Engine, prefix: str) -> None:
    reports = [
        Report(f"{prefix}-{name}", EventKind.QUEUED, T0, "W", "default", arguments)
        for name, arguments in ARGUMENTS.items()
    ]
    with write_transaction(engine) as connection:
        write_reports(connection, reports, T0)


def delete_jobs(engine: Engine, prefix: str) -> None:
    with write_transaction(engine) as connection:
        connection.execute(text("DELETE FROM jobs WHERE jid LIKE :prefix"), {"prefix": f"{prefix}-%"})


def candidates(engine: Engine, needle: str) -> list[int]:
    """The row ids the trigram index holds for ``needle`` (folded), unchecked against the rows."""
    return matching(engine, str(trigram_query(needle)))


def matching(engine: Engine, query: str) -> list[int]:
    """The row ids of an FTS5 query on the index (trigrams as written: the index is case-sensitive)."""
    sql = "SELECT rowid FROM jobs_search WHERE jobs_search MATCH :query ORDER BY rowid"
    with engine.connect() as connection:
        return [rowid for (rowid,) in connection.execute(text(sql), {"query": query})]


def found(engine: Engine, needle: str) -> list[str]:
    return sorted(job.jid for job in Ledger(engine).page(JobFilter(needle=needle), limit=100).jobs)


def trigger_sql(engine: Engine) -> str:
    with engine.connect() as connection:
        sql = "SELECT group_concat(sql, ';') FROM sqlite_master "
        sql += "WHERE type = 'trigger' AND name LIKE 'jobs_search%'"
        return str(connection.execute(text(sql)).scalar_one())


def test_the_triggers_fold_ascii_in_sqlite_and_the_rest_in_python(sqlite_engine):
    assert "lower(new.arguments)" in trigger_sql(sqlite_engine)
    write_jobs(sqlite_engine, "new")

    for name, needle in NEEDLES.items():
        assert found(sqlite_engine, needle) == [f"new-{name}"], needle
        assert len(candidates(sqlite_engine, needle)) == 1, needle
    # Indexed folded, not as written: the upper-case trigrams of the ASCII row index nothing.
    assert matching(sqlite_engine, '"COM"') == []
    assert len(matching(sqlite_engine, '"com"')) == 1


def test_rows_indexed_by_either_revision_are_forgotten_by_the_other(sqlite_engine):
    config = alembic_config(sqlite_engine)
    command.downgrade(config, "0016")
    assert "lower(" not in trigger_sql(sqlite_engine)
    write_jobs(sqlite_engine, "before")  # indexed by 0002's triggers
    upgrade(sqlite_engine)
    write_jobs(sqlite_engine, "after")  # indexed by 0017's

    delete_jobs(sqlite_engine, "before")
    for name, needle in NEEDLES.items():
        assert found(sqlite_engine, needle) == [f"after-{name}"], needle
        assert len(candidates(sqlite_engine, needle)) == 1, needle

    command.downgrade(config, "0016")
    delete_jobs(sqlite_engine, "after")
    for needle in NEEDLES.values():
        assert candidates(sqlite_engine, needle) == [], needle
    upgrade(sqlite_engine)
