"""Migration 0002 (the arguments search indexes) and the counts that may be estimates."""

from __future__ import annotations

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.services.ledger import Budgets, Count, JobFilter, Ledger
from sidekiq_supervisor.services.results import JobList
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.migrate import alembic_config, current_revision, upgrade
from sidekiq_supervisor.store.queries import count_jobs, page_jobs
from sidekiq_supervisor.store.writer import write_reports
from tests.store.straight_rows import insert_generated_jobs

T0 = 1_700_000_000_000_000


def write_jobs(engine: Engine, arguments: list[str]) -> None:
    reports = [Report(f"j{i}", EventKind.QUEUED, T0 + i, "W", "default", a) for i, a in enumerate(arguments)]
    with write_transaction(engine) as connection:
        write_reports(connection, reports, T0)


def insert_jobs(engine: Engine, arguments: list[str]) -> None:
    """Jobs as rows of the first revision's table (today's writer needs later tables)."""
    with engine.begin() as connection:
        for i, argument in enumerate(arguments):
            connection.execute(
                text(
                    "INSERT INTO jobs (jid, job_class, queue, arguments, status, queued_at, attempts) "
                    "VALUES (:jid, 'W', 'default', :arguments, 'queued', :at, 0)"
                ),
                {"jid": f"j{i}", "arguments": argument, "at": T0 + i},
            )


def search_objects(engine: Engine) -> set[str]:
    """The names of the search index's objects present in the database."""
    with engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            # The FTS5 table and its triggers, not FTS5's own shadow tables (jobs_search_data...).
            sql = "SELECT name FROM sqlite_master WHERE name = 'jobs_search' "
            sql += "OR (type = 'trigger' AND name LIKE 'jobs_search%')"
        else:
            sql = "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_jobs_arguments_trgm'"
        return {name for (name,) in connection.execute(text(sql))}


EXPECTED = {
    "sqlite": {"jobs_search", "jobs_search_insert", "jobs_search_delete", "jobs_search_update"},
    "postgresql": {"ix_jobs_arguments_trgm"},
}


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def matching_jids(engine: Engine, needle: str) -> list[str]:
    return [job.jid for job in Ledger(engine).page(JobFilter(needle=needle), limit=100).jobs]


def test_migration_0002_builds_the_index_from_existing_rows_and_downgrades(engine):
    dialect = engine.dialect.name
    assert search_objects(engine) == EXPECTED[dialect]
    try:
        # Later revisions (0003...) go down first; 0002's downgrade must then remove its objects.
        command.downgrade(alembic_config(engine), "0001")
        assert current_revision(engine) == "0001"
        assert search_objects(engine) == set()
        # Written while no index exists (the writer does not need it): the upgrade must index them.
        insert_jobs(engine, ['["Before-Upgrade"]', '["other"]'])
    finally:
        upgrade(engine)
    assert current_revision(engine) == head_revision(engine)
    assert search_objects(engine) == EXPECTED[dialect]
    assert matching_jids(engine, "before-upgrade") == ["j0"]
    if dialect == "sqlite":
        with engine.connect() as connection:
            sql = 'SELECT rowid FROM jobs_search WHERE jobs_search MATCH \'"bef" AND "ade"\''
            assert [rowid for (rowid,) in connection.execute(text(sql))] == [1]


def test_a_count_within_its_budget_is_exact(engine):
    write_jobs(engine, ['["a"]'] * 25)

    assert Ledger(engine).estimated_count(JobFilter()) == Count(25, estimated=False)
    assert Ledger(engine).estimated_count(JobFilter(needle="nothing")) == Count(0, estimated=False)


@pytest.fixture
def many_jobs(engine: Engine) -> int:
    """200,000 jobs: too many to count within a millisecond."""
    total = 200_000
    insert_generated_jobs(
        engine,
        total,
        {
            "jid": "'j' || g",
            "job_class": "'W'",
            "queue": "'default'",
            "arguments": "'[' || g || ']'",
            "status": "'queued'",
            "attempts": "0",
        },
    )
    return total


def test_a_count_over_its_budget_is_an_estimate_marked_as_one(engine, many_jobs):
    ledger = Ledger(engine)
    # Every job's arguments hold "]": a count store.job_counts cannot answer, of every row.
    every_job = JobFilter(needle="]")

    count = ledger.estimated_count(every_job, budget_ms=1)

    assert count.estimated is True
    assert 0.8 * many_jobs <= count.value <= 1.2 * many_jobs
    # The time limit ended with the count: the next exact count on the pool is not cut short.
    assert ledger.count(every_job) == many_jobs
    assert ledger.estimated_count(every_job, budget_ms=60_000) == Count(many_jobs, estimated=False)


def test_a_printed_list_marks_an_estimated_total(engine, many_jobs):
    ledger = Ledger(engine)
    ledger.budgets = Budgets(count_ms=0, summary_ms=0)  # no time for an exact count: a sample

    printed = repr(JobList(ledger, JobFilter(needle="]"), "all jobs"))

    assert "(total estimated)" in printed
    # Every job matches, so the sample's share is 1 and the estimate is the jobs' kept number.
    assert f"{many_jobs:,}" in printed


def test_a_printed_list_with_an_exact_total_is_not_marked(engine):
    write_jobs(engine, ['["a"]'] * 25)

    printed = repr(JobList(Ledger(engine), JobFilter(), "all jobs"))

    assert "estimated" not in printed
    assert "25" in printed


def test_a_rare_filters_page_is_the_same_whether_the_walk_ends_within_its_budget_or_not(engine, many_jobs):
    """PostgreSQL: the newest-first walk, cut at its budget or not, and the trigram index give
    the same page; a connection whose walk was cut goes on working. (SQLite reads the trigram
    index at once, whatever the budget.)"""
    with engine.begin() as connection:
        connection.execute(
            text("UPDATE jobs SET arguments = '[\"Rare-Needle\"]' WHERE jid IN ('j5', 'j100000', 'j199999')")
        )
    rare = JobFilter(needle="rare-needle")
    for budget in (1, 60_000, 0):
        with engine.connect() as connection:
            first = page_jobs(connection, rare, limit=2, walk_budget_ms=budget)
            rest = page_jobs(connection, rare, limit=2, before_id=first[-1].id, walk_budget_ms=budget)
            assert [job.jid for job in first + rest] == ["j199999", "j100000", "j5"], budget
            assert count_jobs(connection, rare) == 3
