"""Duration summaries in SQL equal the domain's nearest-rank summary, on both databases; over
their time budget they are estimated from a sample of the jobs (``store.id_sample``), and say so."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import Engine, text

from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary, summarize
from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.services.ledger import Ledger, Sampling
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.queries import JobFilter, duration_summary
from sidekiq_supervisor.store.writer import write_reports
from tests.store.straight_rows import insert_generated_jobs

T0 = 1_700_000_000_000_000


def seed(engine, count: int, rng: random.Random) -> dict[DurationOrigin, dict[str, list[int]]]:
    """``count`` completed jobs (a third tagged "tagged"), and their durations by origin and tag."""
    reports, durations = [], {origin: {"all": [], "tagged": []} for origin in DurationOrigin}
    for index in range(count):
        queued = T0 + index * 1000
        started = queued + rng.randrange(0, 5_000_000)
        # A few negative durations: clock skew between hosts is reported as measured.
        done = started + rng.randrange(-1_000, 90_000_000)
        arguments = '["tagged"]' if index % 3 == 0 else "[1]"
        for kind, at in (
            (EventKind.QUEUED, queued),
            (EventKind.STARTED, started),
            (EventKind.COMPLETE, done),
        ):
            reports.append(Report(f"j{index}", kind, at, "W", "default", arguments))
        for origin, begin in ((DurationOrigin.QUEUED, queued), (DurationOrigin.STARTED, started)):
            durations[origin]["all"].append(done - begin)
            if index % 3 == 0:
                durations[origin]["tagged"].append(done - begin)
    # A job that never completed counts in no summary.
    reports.append(Report("running", EventKind.STARTED, T0, "W", "default", '["tagged"]'))
    with write_transaction(engine) as connection:
        write_reports(connection, reports, T0)
    return durations


@pytest.mark.parametrize("count", [1, 2, 7, 20, 99, 100, 101, 1000])
def test_a_summary_equals_the_nearest_rank_summary_of_the_same_durations(engine, count):
    durations = seed(engine, count, random.Random(count))

    with engine.connect() as connection:
        for origin in DurationOrigin:
            for tag, needle in (("all", None), ("tagged", "tagged")):
                got = duration_summary(connection, origin, JobFilter(needle=needle))
                assert got == summarize(sorted(durations[origin][tag])), (origin, tag)


def test_a_summary_of_nothing_is_empty(engine):
    seed(engine, 3, random.Random(1))

    with engine.connect() as connection:
        summary = duration_summary(connection, DurationOrigin.QUEUED, JobFilter(needle="no such job"))

    assert summary.count == 0
    assert summary.p50 is None


def analyze(engine: Engine) -> None:
    """Fresh planner statistics, as a ledger in use has them."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("ANALYZE jobs"))


# A sample of 2,000 of a few thousand jobs.
SMALL_TABLE_SAMPLING = Sampling(rows=2000, max_percent=50, min_rows=200)


def assert_close(estimate: DurationSummary, exact: DurationSummary, tolerance: float) -> None:
    """Count, mean and percentiles within ``tolerance`` (a fraction) of the exact ones; the
    maximum is the sample's longest, so it may fall short of the exact one but never exceed it."""
    assert estimate.count == pytest.approx(exact.count, rel=tolerance)
    for name in ("mean", "p50", "p95", "p99"):
        got, want = getattr(estimate, name), getattr(exact, name)
        assert got.total_seconds() == pytest.approx(want.total_seconds(), rel=tolerance), name
    assert estimate.max <= exact.max


def test_a_summary_within_its_budget_is_exact_and_not_marked(engine):
    durations = seed(engine, 300, random.Random(3))
    ledger = Ledger(engine)

    for origin in DurationOrigin:
        for tag, needle in (("all", None), ("tagged", "tagged")):
            got = ledger.duration_summary(origin, JobFilter(needle=needle), budget_ms=60_000, exact=True)
            assert got == summarize(sorted(durations[origin][tag]))
            assert got.estimated is False


def test_a_sample_that_holds_every_job_is_the_exact_summary(engine):
    durations = seed(engine, 300, random.Random(4))

    got = Ledger(engine).duration_summary(DurationOrigin.STARTED, JobFilter(), budget_ms=0, exact=True)

    assert got == summarize(sorted(durations[DurationOrigin.STARTED]["all"]))
    assert got.estimated is False


def test_with_no_budget_a_summary_is_estimated_from_a_sample_and_close_to_the_exact_one(engine):
    durations = seed(engine, 4000, random.Random(5))
    analyze(engine)
    ledger = Ledger(engine)
    sampling = SMALL_TABLE_SAMPLING

    for origin in DurationOrigin:
        for tag, needle in (("all", None), ("tagged", "tagged")):
            estimate = ledger.duration_summary(
                origin, JobFilter(needle=needle), budget_ms=0, sampling=sampling, exact=True
            )
            exact = summarize(sorted(durations[origin][tag]))
            assert estimate.estimated is True, (origin, tag)
            assert_close(estimate, exact, tolerance=0.15)


def test_the_same_ledger_gives_the_same_estimate_every_time(engine):
    seed(engine, 4000, random.Random(6))
    analyze(engine)
    ledger = Ledger(engine)
    sampling = SMALL_TABLE_SAMPLING

    first = ledger.duration_summary(
        DurationOrigin.QUEUED, JobFilter(), budget_ms=0, sampling=sampling, exact=True
    )
    again = ledger.duration_summary(
        DurationOrigin.QUEUED, JobFilter(), budget_ms=0, sampling=sampling, exact=True
    )

    assert first == again


def test_a_sample_with_too_few_matching_jobs_gives_way_to_the_exact_summary(engine):
    durations = seed(engine, 1000, random.Random(7))
    analyze(engine)
    sampling = Sampling(rows=500, max_percent=50, min_rows=5000)

    got = Ledger(engine).duration_summary(
        DurationOrigin.STARTED, JobFilter(needle="tagged"), budget_ms=0, sampling=sampling
    )

    assert got == summarize(sorted(durations[DurationOrigin.STARTED]["tagged"]))
    assert got.estimated is False


@pytest.fixture
def many_completed_jobs(engine: Engine) -> int:
    """200,000 completed jobs: too many to summarise within a millisecond. Durations from started:
    1 to 100 s, spread evenly."""
    total = 200_000
    insert_generated_jobs(
        engine,
        total,
        {
            "jid": "'j' || g",
            "job_class": "'W' || (g % 4)",
            "queue": "'default'",
            "arguments": "'[' || g || ']'",
            "status": "'complete'",
            "queued_at": "0",
            "started_at": "1000000",
            "completed_at": "1000000 + (g * 7919 % 100000 + 1) * 1000",
            "attempts": "1",
        },
    )
    return total


def test_a_summary_over_its_budget_is_estimated_from_a_sample(engine, many_completed_jobs):
    ledger = Ledger(engine)

    for flt in (JobFilter(), JobFilter(job_class="W1")):
        estimate = ledger.duration_summary(DurationOrigin.STARTED, flt, budget_ms=1, exact=True)
        exact = ledger.duration_summary(DurationOrigin.STARTED, flt, budget_ms=60_000, exact=True)

        assert estimate.estimated is True
        assert exact.estimated is False
        assert exact.count == (many_completed_jobs if flt.job_class is None else many_completed_jobs // 4)
        assert_close(estimate, exact, tolerance=0.05)
    # The time limit ended with the read: a summary on the pool's connections is not cut short.
    with engine.connect() as connection:
        assert duration_summary(connection, DurationOrigin.QUEUED, JobFilter()).count == many_completed_jobs


def test_a_summary_of_every_class_or_one_comes_from_the_roll_ups_at_once(engine):
    """Count and mean as the exact summary's; each percentile at or above the exact one and at
    most 19% above it (never above the maximum), and marked as estimated."""
    durations = seed(engine, 300, random.Random(8))
    ledger = Ledger(engine)

    for origin in DurationOrigin:
        got = ledger.duration_summary(origin, JobFilter())
        exact = summarize(sorted(durations[origin]["all"]))
        assert got.percentiles_estimated is True and got.estimated is False
        assert got.count == exact.count
        assert got.mean.total_seconds() == pytest.approx(exact.mean.total_seconds(), rel=1e-9)
        assert got.max == exact.max
        for name in ("p50", "p95", "p99"):
            shown, true = getattr(got, name), getattr(exact, name)
            assert true <= shown <= min(true * 1.19, exact.max), name
    # A filter the roll-ups do not hold is summarised from the jobs, exactly.
    tagged = ledger.duration_summary(DurationOrigin.STARTED, JobFilter(needle="tagged"))
    assert tagged == summarize(sorted(durations[DurationOrigin.STARTED]["tagged"]))
