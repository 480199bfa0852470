"""The seed's JobManager on both databases: every question, its filters, and the lazy result lists."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta
from itertools import islice

import pytest
from sqlalchemy import event

import sidekiq_supervisor
from sidekiq_supervisor.domain.durations import DurationSummary, summarize
from sidekiq_supervisor.domain.filters import InvalidFilter
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report, datetime_from_micros
from sidekiq_supervisor.services import job_manager
from sidekiq_supervisor.services.results import DurationList, JobDuration, JobList
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.writer import write_reports
from tests.conftest import redis_test_url

T0 = 1_700_000_000_000_000
SECOND = 1_000_000

# jid, class, queue, arguments, events as (kind, seconds after T0); written one job per batch, in
# this order, so the newest job is the last one.
JOBS = [
    ("q-alice", "MailWorker", "mail", '[1,"Alice@Example.com"]', [("queued", 0)]),
    ("q-bob", "HardWorker", "default", '[2,"bob"]', [("queued", 1)]),
    ("s-alice", "HardWorker", "default", '[3,"alice@example.com"]', [("queued", 2), ("started", 3)]),
    ("s-carol", "MailWorker", "mail", '[4,"carol"]', [("started", 4)]),
    ("c-alice", "HardWorker", "default", '[5,"ALICE"]', [("queued", 5), ("started", 7), ("complete", 12)]),
    ("c-dave", "MailWorker", "mail", '[6,"dave"]', [("queued", 6), ("started", 10), ("complete", 11)]),
    ("c-erin", "HardWorker", "critical", '[7,"erin_50%"]', [("started", 8), ("complete", 20)]),
]


def reports_for(jid, job_class, queue, arguments, events) -> list[Report]:
    return [Report(jid, EventKind(kind), T0 + s * SECOND, job_class, queue, arguments) for kind, s in events]


def write(engine, reports) -> None:
    with write_transaction(engine) as connection:
        write_reports(connection, reports, T0)


def write_seed_jobs(engine) -> None:
    for job in JOBS:
        write(engine, reports_for(*job))


def queued_reports(count: int, prefix: str = "bulk") -> list[Report]:
    return [
        Report(f"{prefix}-{n:05d}", EventKind.QUEUED, T0 + n, "BulkWorker", "bulk", f"[{n}]")
        for n in range(count)
    ]


def jids(answer) -> list[str]:
    return [job.jid for job in answer]


@pytest.fixture
def manager(engine):
    return job_manager.JobManager(engine, enqueuer=None)


@pytest.fixture
def seeded(engine, manager):
    write_seed_jobs(engine)
    return manager


QUESTIONS = [
    # method, filter, keywords, expected jids (newest first)
    ("queued_jobs", None, {}, ["q-bob", "q-alice"]),
    ("queued_jobs", "alice", {}, ["q-alice"]),
    ("queued_jobs", None, {"job_class": "MailWorker"}, ["q-alice"]),
    ("queued_jobs", None, {"queue": "default"}, ["q-bob"]),
    ("uncompleted_jobs", None, {}, ["s-carol", "s-alice"]),
    ("uncompleted_jobs", "ALICE", {}, ["s-alice"]),
    ("uncompleted_jobs", None, {"job_class": "MailWorker"}, ["s-carol"]),
    ("uncompleted_jobs", "carol", {"queue": "default"}, []),
    ("completed_jobs", None, {}, ["c-erin", "c-dave", "c-alice"]),
    ("completed_jobs", "Alice", {}, ["c-alice"]),
    ("completed_jobs", None, {"queue": "mail"}, ["c-dave"]),
    ("completed_jobs", None, {"job_class": "HardWorker", "queue": "critical"}, ["c-erin"]),
    ("all_jobs", None, {}, [job[0] for job in reversed(JOBS)]),
    ("all_jobs", "alice", {}, ["c-alice", "s-alice", "q-alice"]),
    ("all_jobs", "alice", {"job_class": "HardWorker"}, ["c-alice", "s-alice"]),
    ("all_jobs", "", {}, [job[0] for job in reversed(JOBS)]),
    ("all_jobs", "_", {}, ["c-erin"]),
    ("all_jobs", "%", {}, ["c-erin"]),
    ("all_jobs", "nobody", {}, []),
    ("all", "@example", {}, ["s-alice", "q-alice"]),
    ("all", None, {"queue": "mail"}, ["c-dave", "s-carol", "q-alice"]),
    ("queued_to_completion_duration", None, {}, ["c-dave", "c-alice"]),
    ("queued_to_completion_duration", "DAVE", {}, ["c-dave"]),
    ("queued_to_completion_duration", None, {"job_class": "HardWorker"}, ["c-alice"]),
    ("completed_jobs_duration", None, {}, ["c-erin", "c-dave", "c-alice"]),
    ("completed_jobs_duration", "alice", {}, ["c-alice"]),
    ("completed_jobs_duration", None, {"queue": "critical"}, ["c-erin"]),
]


@pytest.mark.parametrize(
    ("method", "needle", "keywords", "expected"),
    QUESTIONS,
    ids=[f"{m}({n!r},{','.join(f'{k}={v}' for k, v in kw.items())})" for m, n, kw, _ in QUESTIONS],
)
def test_every_question_answers_with_the_matching_jobs_newest_first(
    seeded, method, needle, keywords, expected
):
    answer = getattr(seeded, method)(needle, **keywords)

    assert isinstance(answer, JobList)
    assert jids(answer) == expected
    assert len(answer) == len(expected)


def test_all_is_the_seed_spelling_of_all_jobs(seeded):
    assert job_manager.JobManager.all is job_manager.JobManager.all_jobs
    assert jids(seeded.all()) == jids(seeded.all_jobs())


def test_a_job_carries_decoded_arguments_aware_utc_times_and_attempts(seeded):
    (job,) = seeded.completed_jobs("ALICE")

    assert job.jid == "c-alice"
    assert (job.job_class, job.queue) == ("HardWorker", "default")
    assert job.arguments == [5, "ALICE"]
    assert job.status is JobStatus.COMPLETE
    assert job.queued_at == datetime_from_micros(T0 + 5 * SECOND)
    assert job.started_at == datetime_from_micros(T0 + 7 * SECOND)
    assert job.completed_at == datetime_from_micros(T0 + 12 * SECOND)
    for moment in (job.queued_at, job.started_at, job.completed_at):
        assert moment.tzinfo is UTC
    assert job.attempts == 1
    assert job.restarted_from is None
    assert seeded.job("c-alice") == job
    assert seeded.job("no-such-jid") is None


def test_a_job_never_started_has_no_start_and_no_attempts(seeded):
    (job,) = seeded.queued_jobs("bob")

    assert job.started_at is None
    assert job.completed_at is None
    assert job.attempts == 0


def test_duration_rows_carry_how_long_each_job_took(seeded):
    from_queued = seeded.queued_to_completion_duration()
    from_started = seeded.completed_jobs_duration()

    assert isinstance(from_queued, DurationList)
    assert all(isinstance(row, JobDuration) for row in from_queued)
    assert {row.jid: row.duration for row in from_queued} == {
        "c-dave": timedelta(seconds=5),
        "c-alice": timedelta(seconds=7),
    }
    assert {row.jid: row.duration for row in from_started} == {
        "c-erin": timedelta(seconds=12),
        "c-dave": timedelta(seconds=1),
        "c-alice": timedelta(seconds=5),
    }
    assert from_started[0].arguments == [7, "erin_50%"]


def test_a_duration_summary_matches_the_in_memory_summary_of_the_same_durations(seeded):
    exact = seeded.completed_jobs_duration().summary(exact=True)
    assert exact == summarize([1 * SECOND, 5 * SECOND, 12 * SECOND])
    assert seeded.queued_to_completion_duration().summary(exact=True) == summarize([5 * SECOND, 7 * SECOND])
    # Without a filter the roll-ups answer: the same count, mean and maximum, estimated percentiles.
    rolled = seeded.completed_jobs_duration().summary()
    assert rolled.percentiles_estimated is True
    assert (rolled.count, rolled.mean, rolled.max) == (exact.count, exact.mean, exact.max)
    assert seeded.completed_jobs_duration("alice").summary() == summarize([5 * SECOND])
    # A queue's summary comes from the roll-ups too (they are per class and queue): a single
    # duration's estimated percentiles are that duration.
    by_queue = seeded.completed_jobs_duration(queue="mail")
    assert by_queue.summary(exact=True) == summarize([1 * SECOND])
    assert by_queue.summary() == replace(summarize([1 * SECOND]), percentiles_estimated=True)
    assert len(by_queue) == 1
    assert seeded.queued_to_completion_duration("nobody").summary() == DurationSummary.empty()


def test_a_summary_over_many_durations_uses_nearest_rank_percentiles(engine, manager):
    durations = [n * n * 1_000 + 7 for n in range(1, 138)]
    reports = []
    for n, micros in enumerate(durations):
        jid, args = f"timed-{n:03d}", f'["timed",{n}]'
        start = T0 + n * SECOND
        reports.append(Report(jid, EventKind.QUEUED, start - 3 * SECOND, "TimedWorker", "default", args))
        reports.append(Report(jid, EventKind.STARTED, start, "TimedWorker", "default", args))
        reports.append(Report(jid, EventKind.COMPLETE, start + micros, "TimedWorker", "default", args))
    write(engine, reports)

    started = manager.completed_jobs_duration()
    queued = manager.queued_to_completion_duration("timed")

    assert started.summary(exact=True) == summarize(sorted(durations))
    assert queued.summary() == summarize(sorted(d + 3 * SECOND for d in durations))
    assert sorted(row.duration for row in started) == [timedelta(microseconds=d) for d in sorted(durations)]


def test_an_empty_filter_means_no_filter_and_an_overlong_one_is_refused(seeded):
    assert len(seeded.all_jobs("")) == len(JOBS)
    with pytest.raises(InvalidFilter):
        seeded.all_jobs("x" * 201)


def test_a_job_list_runs_its_query_only_when_used(engine, manager):
    answer = manager.queued_jobs()
    write(engine, queued_reports(3, "late"))

    assert jids(answer) == ["late-00002", "late-00001", "late-00000"]
    assert len(answer) == 3


def test_iterating_a_large_list_streams_every_job_once_newest_first(engine, manager):
    total = 2500  # more than two pages of the ledger's iteration
    write(engine, queued_reports(total))
    answer = manager.queued_jobs()

    streamed = jids(answer)

    expected = [f"bulk-{n:05d}" for n in reversed(range(total))]
    assert streamed == expected
    assert len(set(streamed)) == total
    assert len(answer) == total
    assert answer.count() == total


def completed_reports(count: int) -> list[Report]:
    reports = []
    for n in range(count):
        for offset, kind in enumerate((EventKind.QUEUED, EventKind.STARTED, EventKind.COMPLETE)):
            reports.append(Report(f"done-{n:05d}", kind, T0 + n * SECOND + offset, "W", "default", f"[{n}]"))
    return reports


@pytest.mark.parametrize("question", ["all_jobs", "completed_jobs_duration", "queued_to_completion_duration"])
def test_iterating_reads_the_ledger_a_page_at_a_time(engine, manager, question):
    total = 2500
    write(engine, completed_reports(total))
    reads: list[str] = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM jobs" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        jobs = iter(getattr(manager, question)())
        assert reads == []  # nothing is read before the first job is asked for
        assert next(jobs).jid == "done-02499"
        assert len(reads) == 1
        assert len(list(islice(jobs, 999))) == 999  # the rest of the first page: no new read
        assert len(reads) == 1
        assert next(jobs).jid == "done-01499"  # the first job of the second page
        assert len(reads) == 2
        assert sum(1 for _ in jobs) == total - 1001
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert len(reads) == 3
    assert all("LIMIT" in statement for statement in reads)


def test_a_job_list_can_be_indexed_sliced_and_cut_to_its_first_jobs(engine, manager):
    total = 2500
    write(engine, queued_reports(total))
    answer = manager.all_jobs()

    assert answer[0].jid == "bulk-02499"
    assert answer[1234].jid == "bulk-01265"
    assert answer[total - 1].jid == "bulk-00000"
    assert jids(answer[:3]) == ["bulk-02499", "bulk-02498", "bulk-02497"]
    assert jids(answer[998:1002]) == ["bulk-01501", "bulk-01500", "bulk-01499", "bulk-01498"]
    assert jids(answer[::1000]) == ["bulk-02499", "bulk-01499", "bulk-00499"]
    assert jids(answer.first(5)) == [f"bulk-{n:05d}" for n in range(2499, 2494, -1)]
    assert len(answer.first()) == 20
    with pytest.raises(IndexError):
        answer[total]
    with pytest.raises(IndexError):
        answer[-1]


def test_a_filter_applies_to_iteration_count_and_slices_alike(engine, manager):
    write(engine, queued_reports(1200))
    answer = manager.queued_jobs("[11")  # [11], [110]..[119], [1100]..[1199]

    expected = [
        "bulk-00011",
        *(f"bulk-{n:05d}" for n in range(110, 120)),
        *(f"bulk-{n:05d}" for n in range(1100, 1200)),
    ]
    assert sorted(jids(answer)) == expected
    assert len(answer) == len(expected)
    assert answer[0].jid == "bulk-01199"


def test_printing_a_short_list_shows_every_row_and_the_count(seeded):
    text = repr(seeded.queued_jobs("alice"))

    assert "queued jobs matching 'alice'" in text
    assert "q-alice" in text
    assert "MailWorker" in text
    assert "1 job" in text
    assert "showing" not in text


def test_printing_a_long_list_shows_the_newest_twenty_the_total_and_a_truncation_note(engine, manager):
    write(engine, queued_reports(25))

    text = repr(manager.all_jobs())

    assert text.startswith("all jobs")
    assert "showing the newest 20 of 25 jobs" in text
    assert all(f"bulk-{n:05d}" in text for n in range(5, 25))
    assert not any(f"bulk-{n:05d}" in text for n in range(5))


def test_printing_a_duration_list_adds_its_summary(seeded):
    text = repr(seeded.completed_jobs_duration())

    assert "started → complete" in text
    assert "duration" in text
    assert "summary" in text
    assert "12 s" in text  # c-erin's duration, and the maximum
    assert "p95" in text


def test_the_package_job_manager_is_bound_to_database_url(monkeypatch, ledger_url, engine):
    write_seed_jobs(engine)
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    monkeypatch.setenv("REDIS_URL", redis_test_url())
    monkeypatch.setattr(sidekiq_supervisor, "_manager", None)  # restored to None afterwards

    from sidekiq_supervisor import JobManager

    try:
        assert isinstance(JobManager, job_manager.JobManager)
        assert JobManager.ledger.engine.url.render_as_string(hide_password=False) == ledger_url
        assert jids(JobManager.uncompleted_jobs("alice")) == ["s-alice"]
        assert jids(JobManager.all()) == [job[0] for job in reversed(JOBS)]
        from sidekiq_supervisor import JobManager as again  # noqa: N813

        assert again is JobManager
    finally:
        JobManager.ledger.engine.dispose()
