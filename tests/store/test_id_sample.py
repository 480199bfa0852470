"""Estimates on SQLite: samples of the jobs by windows of ids spread over every stretch of the ids,
read among the jobs of the filter's status, class and queue, scaled by their kept number; and when
an estimate answers without an exact attempt (on either database), or a larger sample follows a
short one."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine

from sidekiq_supervisor.domain.durations import DurationOrigin
from sidekiq_supervisor.domain.model import JobStatus
from sidekiq_supervisor.services.ledger import Count, Ledger
from sidekiq_supervisor.store.estimates import Sampling, estimated_count, surely_past
from sidekiq_supervisor.store.id_sample import id_windows, sampled_count, sampled_durations
from sidekiq_supervisor.store.job_counts import recount
from sidekiq_supervisor.store.queries import JobFilter, planner_estimate
from sidekiq_supervisor.store.schema import jobs
from tests.store.plans import plan, statements
from tests.store.straight_rows import insert_generated_jobs


@pytest.mark.parametrize(
    ("lowest", "highest", "ids", "windows"),
    [(1, 1_000_000, 20_000, 64), (500, 10_000, 1_000, 64), (1, 100, 10, 64), (7, 7_000, 6_993, 5)],
)
def test_windows_lie_one_in_each_stretch_and_hold_about_the_ids_asked_for(lowest, highest, ids, windows):
    found = id_windows(lowest, highest, ids, windows=windows)

    count = min(windows, ids)
    assert len(found) == count
    span = highest - lowest + 1
    for stretch, (first, last) in enumerate(found):
        assert lowest + span * stretch // count <= first <= last <= lowest + span * (stretch + 1) // count - 1
    held = sum(last - first + 1 for first, last in found)
    assert ids - count <= held <= ids
    assert id_windows(lowest, highest, ids, windows=windows) == found  # the same seed, the same sample


def test_asking_for_every_id_gives_one_window_of_them_all():
    assert id_windows(3, 90, 88) == [(3, 90)]
    assert id_windows(3, 90, 1_000) == [(3, 90)]


def test_another_seed_draws_other_places():
    assert id_windows(1, 1_000_000, 20_000, seed=1) != id_windows(1, 1_000_000, 20_000, seed=2)


@pytest.fixture
def sqlite_only(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("the plan of SQLite's own planner")


@pytest.fixture
def thirds(engine: Engine) -> int:
    """30,000 jobs: a third complete and tagged "Tagged" (duration from started 1-100 s), the rest
    queued; every seventh also tagged "Seventh"."""
    total = 30_000
    insert_generated_jobs(
        engine,
        total,
        {
            "jid": "'j' || g",
            "job_class": "'W' || (g % 5)",
            "queue": "'default'",
            "arguments": "'[' || (CASE WHEN g % 3 = 0 THEN '\"Tagged\", ' ELSE '' END) "
            "|| (CASE WHEN g % 7 = 3 THEN '\"Seventh\", ' ELSE '' END) || g || ']'",
            "status": "CASE WHEN g % 3 = 0 THEN 'complete' ELSE 'queued' END",
            "queued_at": "0",
            "started_at": "CASE WHEN g % 3 = 0 THEN 1000000 END",
            "completed_at": "CASE WHEN g % 3 = 0 THEN 1000000 + (g * 7919 % 100000 + 1) * 1000 END",
            "attempts": "0",
        },
    )
    return total


def test_a_sample_reads_each_window_through_the_index_of_the_kept_part(engine, sqlite_only, thirds):
    """The windows' jobs of the filter's status and class are read through their index, within
    each window's ids; the needle is checked on each of them, not through the trigram index."""
    tagged = JobFilter(status=JobStatus.COMPLETE, job_class="W1", needle="tagged")
    with engine.connect() as connection:
        with statements(engine) as seen:
            sampled_count(connection, tagged, rows=1_000)
            sampled_durations(connection, DurationOrigin.STARTED, tagged, rows=1_000)
        plans = [plan(connection, sql, parameters) for sql, parameters in seen if "UNION ALL" in sql]

    assert len(plans) == 2
    for steps in plans:
        # The index of the status (and class), searched within the window's ids.
        assert re.search(
            r"SEARCH jobs USING INDEX ix_jobs_\w*status\w* \(.*status=\? AND (row)?id>\? AND (row)?id<\?\)",
            steps,
        ), steps
        assert "jobs_search" not in steps, steps


def test_a_count_past_its_budget_is_scaled_from_the_sample(engine, thirds):
    sampling = Sampling(rows=3_000, min_count_rows=100)
    tagged = JobFilter(needle="tagged")
    with engine.connect() as connection:
        count = estimated_count(connection, tagged, sampling)
        sample = sampled_count(connection, tagged, rows=3_000)

    assert count.estimated is True
    assert count.value == pytest.approx(thirds / 3, rel=0.1)
    assert 2_900 <= sample.rows_read <= 3_000
    assert sample.matching == pytest.approx(sample.rows_read / 3, rel=0.1)


def test_a_sample_of_every_job_is_the_count_and_one_with_too_few_matches_gives_way(engine, thirds):
    """Too few matches: PostgreSQL's planner estimates; SQLite, which has none, counts exactly."""
    with engine.connect() as connection:
        whole = estimated_count(connection, JobFilter(needle="tagged"), Sampling(rows=thirds))
        rare = JobFilter(needle="299")  # 30 or so jobs
        few = estimated_count(connection, rare, Sampling(rows=3_000, min_count_rows=100))
        planned = planner_estimate(connection, rare) if engine.dialect.name == "postgresql" else None

    assert whole == Count(thirds // 3, estimated=False)
    if planned is None:
        assert few == Ledger(engine).estimated_count(rare, budget_ms=60_000)
        assert few.estimated is False
    else:
        assert few == Count(planned, estimated=True)


def test_gaps_in_the_ids_do_not_shrink_the_estimate(engine, thirds):
    """Ids missing from the windows widen them: the sample still holds about the rows asked for,
    and scales by the jobs stored, not by the ids spanned."""
    with engine.begin() as connection:
        connection.execute(jobs.delete().where(jobs.c.id % 7 == 0))
        recount(connection)  # the delete went past the writer, which keeps the counts
    remaining = thirds - thirds // 7
    with engine.connect() as connection:
        sample = sampled_count(connection, JobFilter(), rows=3_000)
        count = estimated_count(connection, JobFilter(needle="["), Sampling(rows=3_000))

    assert sample.rows_read == pytest.approx(3_000, rel=0.05)
    assert count == Count(remaining, estimated=True)


def test_a_needle_within_a_status_is_sampled_among_that_status_alone(engine, thirds):
    """Of the queued jobs (two thirds), those tagged "Seventh": the sample reads queued jobs
    only, and scales by their kept number."""
    seven = JobFilter(status=JobStatus.QUEUED, needle="seventh")
    with engine.connect() as connection:
        sample = sampled_count(connection, seven, rows=3_000)
        count = estimated_count(connection, seven, Sampling(rows=3_000, min_count_rows=100))
    exact = Ledger(engine).count(seven)

    assert sample is not None
    assert sample.population == thirds - thirds // 3
    assert 2_900 <= sample.rows_read <= 3_000
    assert count.estimated is True
    assert count.value == pytest.approx(exact, rel=0.1)


PARTIAL = Sampling(rows=2_000, max_percent=50, min_rows=100)


def test_a_needle_too_short_for_a_trigram_over_many_jobs_is_estimated_at_once(engine, thirds):
    """Checking "7" on 30,000 jobs takes longer than 10 ms on any machine: no exact attempt."""
    with engine.connect() as connection:
        assert surely_past(connection, JobFilter(needle="7"), budget_ms=10) is True
        assert surely_past(connection, JobFilter(needle="7"), budget_ms=60_000) is False
        assert surely_past(connection, JobFilter(status=JobStatus.COMPLETE), budget_ms=10) is False

    with statements(engine) as seen:
        count = Ledger(engine).estimated_count(JobFilter(needle="7"), budget_ms=10)
        # 10,000 complete jobs to check: a budget of 1 ms, and a sample short of them all.
        summary = Ledger(engine).duration_summary(
            DurationOrigin.QUEUED, JobFilter(needle="7"), budget_ms=1, sampling=PARTIAL
        )
    assert count.estimated is True
    assert summary.estimated is True
    # No statement checked the needle on every job: each read the samples' windows.
    checks = [sql for sql, _ in seen if "instr" in sql or "ILIKE" in sql]
    assert checks
    assert all("UNION ALL" in sql for sql in checks)
    # With time enough, the answers are exact.
    exact = Ledger(engine).estimated_count(JobFilter(needle="7"), budget_ms=60_000)
    assert exact == Count(Ledger(engine).count(JobFilter(needle="7")), estimated=False)
    summary = Ledger(engine).duration_summary(DurationOrigin.QUEUED, JobFilter(needle="7"), budget_ms=60_000)
    assert summary.estimated is False


def test_a_trigram_needle_is_estimated_at_once_where_postgresql_expects_it_in_too_many_jobs(engine, thirds):
    """ "Seventh" is in 4,286 of the 30,000 jobs: more than 1 ms can check at 1.5 us a job, fewer
    than 100 ms can. PostgreSQL's planner says so from its statistics before anything is read,
    whatever the filter's status (checked after the needle); SQLite, which has no planner,
    always tries the exact answer first (its budget stops it)."""
    postgresql = engine.dialect.name == "postgresql"
    if postgresql:
        with engine.connect() as connection:
            expected = planner_estimate(connection, JobFilter(needle="seventh"))
        assert 2_000 <= expected <= 9_000  # within the planner's error seen at scale
    with engine.connect() as connection:
        for status in (None, JobStatus.QUEUED):
            seventh = JobFilter(status=status, needle="seventh")
            assert surely_past(connection, seventh, budget_ms=1) is postgresql
            assert surely_past(connection, seventh, budget_ms=100) is False
        assert surely_past(connection, JobFilter(needle="absent-word"), budget_ms=1) is False

    if postgresql:
        with statements(engine) as seen:
            count = Ledger(engine).estimated_count(JobFilter(needle="seventh"), budget_ms=1)
        assert count.estimated is True
        assert any(sql.startswith("EXPLAIN") for sql, _ in seen)
        checks = [sql for sql, _ in seen if "ILIKE" in sql and not sql.startswith("EXPLAIN")]
        assert checks
        assert all("UNION ALL" in sql for sql in checks)  # the sample's windows, no exact attempt


def test_a_summary_sample_short_of_matches_is_followed_by_a_larger_one(engine, thirds):
    """Among 10,000 complete jobs, a seventh are tagged "Seventh": 1,000 sampled hold about 140
    of them, short of 200, so a sample of about 1,500 follows; capped below that, the exact
    summary answers instead."""
    seventh = JobFilter(needle="seventh")
    ledger = Ledger(engine)
    exact = ledger.duration_summary(DurationOrigin.STARTED, seventh, budget_ms=60_000, exact=True)

    larger = Sampling(rows=1_000, min_rows=200, max_percent=50)
    estimate = ledger.duration_summary(
        DurationOrigin.STARTED, seventh, budget_ms=0, sampling=larger, exact=True
    )
    capped = Sampling(rows=1_000, min_rows=200, max_percent=10)
    instead = ledger.duration_summary(
        DurationOrigin.STARTED, seventh, budget_ms=0, sampling=capped, exact=True
    )

    assert estimate.estimated is True
    assert estimate.count == pytest.approx(exact.count, rel=0.15)
    assert instead == exact
