"""Reads that give up at a time limit: cut short past it on either database, and the connection
that ran one goes on working, its next statements not cut short."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from sidekiq_supervisor.store.time_limits import within_budget

# A statement that runs for many seconds unless stopped: a count to a hundred million.
ENDLESS = {
    "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000000) "
    "SELECT count(*) FROM n",
    "postgresql": "SELECT count(*) FROM generate_series(1, 100000000)",
}


def test_a_read_past_its_budget_gives_none_and_the_connection_goes_on(engine):
    endless = ENDLESS[engine.dialect.name]
    with engine.connect() as connection:
        assert within_budget(connection, 50, lambda: connection.execute(text(endless)).scalar_one()) is None
        # The connection is out of the read's transaction and answers in full.
        assert not connection.in_transaction()
        counted = "SELECT count(*) FROM (SELECT 1 FROM jobs UNION ALL SELECT 2) AS t"
        assert connection.execute(text(counted)).scalar_one() == 1


def test_a_read_within_its_budget_gives_its_answer(engine):
    with engine.connect() as connection:
        answer = within_budget(connection, 60_000, lambda: connection.execute(text("SELECT 7")).scalar_one())
    assert answer == 7


def test_every_statement_of_a_read_is_cut_short_past_the_budget(engine):
    """A read of several statements: one that starts after the limit is stopped too, though the
    limit passed while no statement ran."""
    endless = ENDLESS[engine.dialect.name]
    ran: list[int] = []

    def two_statements() -> int:
        ran.append(connection.execute(text("SELECT 1")).scalar_one())
        time.sleep(0.1)
        return int(connection.execute(text(endless)).scalar_one())

    with engine.connect() as connection:
        assert within_budget(connection, 50, two_statements) is None
    assert ran == [1]


def test_other_errors_are_not_taken_for_the_limit(engine):
    with engine.connect() as connection, pytest.raises(DBAPIError):
        within_budget(connection, 60_000, lambda: connection.execute(text("SELECT * FROM nowhere")).all())


def test_a_budget_reached_while_no_statement_runs_stops_none_later(engine):
    """Past the limit while no statement runs, and then the read is over: the connection's next
    statements run in full."""
    endless = ENDLESS[engine.dialect.name]
    counted = {
        "sqlite": "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 200000) "
        "SELECT count(*) FROM n",
        "postgresql": "SELECT count(*) FROM generate_series(1, 200000)",
    }[engine.dialect.name]

    def slow_without_sql() -> int:
        time.sleep(0.05)
        return 3

    with engine.connect() as connection:
        assert within_budget(connection, 1, slow_without_sql) == 3
        assert connection.execute(text(counted)).scalar_one() == 200_000
        connection.commit()
        # And the limit still works on it.
        assert within_budget(connection, 50, lambda: connection.execute(text(endless)).scalar_one()) is None
