"""The check every test of ``store.job_counts`` makes: the counts kept equal a count of the rows."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import Engine, select

from sidekiq_supervisor.store.schema import job_counts, jobs


def counted_afresh(engine: Engine) -> Counter[tuple[str, str, str]]:
    """Jobs per class, queue and status, counted from the jobs table."""
    with engine.connect() as connection:
        rows = connection.execute(select(jobs.c.job_class, jobs.c.queue, jobs.c.status))
        return Counter(tuple(row) for row in rows)  # type: ignore[misc]


def kept_counts(engine: Engine) -> Counter[tuple[str, str, str]]:
    """The counts as ``job_counts`` keeps them (rows at zero left out)."""
    with engine.connect() as connection:
        rows = connection.execute(select(job_counts))
        return Counter(
            {
                (row.job_class, row.queue, row.status): row._mapping["count"]
                for row in rows
                if row._mapping["count"]
            }
        )


def assert_counts_match(engine: Engine) -> None:
    """The kept counts are those of the jobs table, and none is below zero."""
    with engine.connect() as connection:
        assert all(n >= 0 for n in connection.execute(select(job_counts.c["count"])).scalars())
    assert kept_counts(engine) == counted_afresh(engine)
