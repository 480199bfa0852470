"""Many jobs written straight in SQL, for tests that need more rows than the writer would write
in good time: a read must outlast a budget of a millisecond."""

from __future__ import annotations

from sqlalchemy import Engine, text

from sidekiq_supervisor.store.job_counts import recount
from sidekiq_supervisor.store.rollup_counts import count_kept_jobs
from sidekiq_supervisor.store.rollups import apply_changes


def insert_generated_jobs(engine: Engine, total: int, columns: dict[str, str]) -> None:
    """``total`` jobs, each column's value an SQL expression of ``g`` (1 to ``total``), on either
    database (SQLite binds ``||`` tighter than ``%``: parenthesise), into a ledger with no jobs;
    the kept counts and roll-ups counted, as the writer would have kept them, and PostgreSQL's
    statistics refreshed (its estimates read them)."""
    names, values = ", ".join(columns), ", ".join(columns.values())
    if engine.dialect.name == "postgresql":
        insert = f"INSERT INTO jobs ({names}) SELECT {values} FROM generate_series(1, :n) g"
    else:
        insert = (
            f"INSERT INTO jobs ({names}) WITH RECURSIVE series(g) AS "
            f"(SELECT 1 UNION ALL SELECT g + 1 FROM series WHERE g < :n) SELECT {values} FROM series"
        )
    with engine.begin() as connection:
        connection.execute(text(insert), {"n": total})
        recount(connection)
        apply_changes(connection, count_kept_jobs(connection, by_queue=True))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE jobs"))
