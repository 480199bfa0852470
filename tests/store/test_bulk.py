"""The writer's bulk statements go to the DBAPI cursor, past SQLAlchemy: its errors must still come
out as SQLAlchemy's, and a lost connection must not go back to the pool."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from sidekiq_supervisor.store.bulk import execute, insert_ignoring_conflicts, select_where_in
from sidekiq_supervisor.store.engine import make_engine, write_transaction
from sidekiq_supervisor.store.schema import job_counts, jobs


def test_a_refused_statement_raises_sqlalchemys_error_and_the_transaction_rolls_back(engine: Engine) -> None:
    columns = ["jid", "job_class", "queue", "arguments", "status", "attempts"]
    good, bad = ("a" * 24, "Job", "q", "[]", "queued", 0), ("b" * 24, None, "q", "[]", "queued", 0)
    with pytest.raises(IntegrityError) as raised, write_transaction(engine) as connection:
        insert_ignoring_conflicts(connection, jobs, columns, [good], conflict=["jid"], returning=["jid"])
        insert_ignoring_conflicts(connection, jobs, columns, [bad], conflict=["jid"], returning=["jid"])
    assert "job_class" in str(raised.value.orig)
    with engine.connect() as connection:
        # The first insert went with the transaction, and the connection is usable again.
        assert connection.execute(select(jobs.c.jid)).all() == []
        assert select_where_in(connection, jobs, ["jid"], "jid", ["a" * 24]) == []


def test_rows_come_back_as_tuples_and_statements_without_rows_as_nothing(engine: Engine) -> None:
    with write_transaction(engine) as connection:
        inserted = insert_ignoring_conflicts(
            connection,
            job_counts,
            ["job_class", "queue", "status", "count"],
            [("Job", "q", "queued", 2), ("Job", "q", "started", 1)],
            conflict=["job_class", "queue", "status"],
            returning=["status", "count"],
        )
        assert sorted(inserted) == [("queued", 2), ("started", 1)]
        assert execute(connection, "DELETE FROM job_counts WHERE count > 1", ()) == []
    with engine.connect() as connection:
        assert connection.execute(select(job_counts.c.status)).scalars().all() == ["started"]


@pytest.mark.postgres
def test_a_connection_lost_mid_transaction_is_invalidated_and_not_handed_out_again(postgres_url: str) -> None:
    engine, admin = make_engine(postgres_url, pool_size=1), make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            lost_pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
            with admin.connect() as killer:
                killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": lost_pid})
            with pytest.raises(OperationalError) as raised:
                select_where_in(connection, jobs, ["jid"], "jid", ["a" * 24])
            assert raised.value.connection_invalidated and connection.invalidated
        with engine.connect() as connection:
            assert connection.execute(text("SELECT pg_backend_pid()")).scalar_one() != lost_pid
            assert select_where_in(connection, jobs, ["jid"], "jid", ["a" * 24]) == []
    finally:
        engine.dispose()
        admin.dispose()
