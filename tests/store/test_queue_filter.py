"""A filter by queue finds exactly the queue's jobs, whatever their number, and on SQLite a small
queue's page and count are read through the queue's own index (migration 0014), not by walking
every job of a status."""

from __future__ import annotations

from dataclasses import replace

import pytest
from sqlalchemy import Engine, inspect

from sidekiq_supervisor.domain.durations import DurationOrigin
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report
from sidekiq_supervisor.store import queries
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.queries import JobFilter, count_jobs, page_jobs
from sidekiq_supervisor.store.schema import jobs
from sidekiq_supervisor.store.writer import write_reports
from tests.store.plans import plan, statements

T0 = 1_700_000_000_000_000
# With the threshold at 5, "rare" (4 jobs) is small and "busy" (60) is not.
SMALL = 5
QUEUES = {"busy": 60, "rare": 4}
FILTERS = [
    JobFilter(status=status, queue=queue)
    for status in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.COMPLETE)
    for queue in QUEUES
] + [JobFilter(queue=queue, duration_from=DurationOrigin.STARTED) for queue in QUEUES]


def report(jid: str, kind: EventKind, at: int, queue: str) -> Report:
    return Report(jid, kind, at, "HardWorker", queue, "[]")


@pytest.fixture
def ledger(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, JobStatus]]:
    """Each queue's jobs, newest last, in every status: jid -> (queue, status)."""
    monkeypatch.setattr(queries, "SMALL_QUEUE", SMALL)
    written: dict[str, tuple[str, JobStatus]] = {}
    reports = []
    for index in range(sum(QUEUES.values())):
        queue = "rare" if index % 16 == 5 else "busy"
        jid, at = f"j{index:03}", T0 + index * 10
        status = [JobStatus.QUEUED, JobStatus.STARTED, JobStatus.COMPLETE][index % 3]
        reports.append(report(jid, EventKind.QUEUED, at, queue))
        if status is not JobStatus.QUEUED:
            reports.append(report(jid, EventKind.STARTED, at + 1, queue))
        if status is JobStatus.COMPLETE:
            reports.append(report(jid, EventKind.COMPLETE, at + 2, queue))
        written[jid] = (queue, status)
    assert sum(queue == "rare" for queue, _status in written.values()) == QUEUES["rare"]
    with write_transaction(engine) as connection:
        write_reports(connection, reports, T0)
    return written


def expected(ledger: dict[str, tuple[str, JobStatus]], job_filter: JobFilter) -> list[str]:
    status = JobStatus.COMPLETE if job_filter.duration_from else job_filter.status
    matching = [jid for jid, (queue, of) in ledger.items() if queue == job_filter.queue and of is status]
    return sorted(matching, reverse=True)


@pytest.mark.parametrize("job_filter", FILTERS, ids=lambda f: f"{f.status or 'duration'}-{f.queue}")
def test_a_queue_filter_pages_and_counts_exactly_its_jobs(
    engine: Engine, ledger: dict[str, tuple[str, JobStatus]], job_filter: JobFilter
) -> None:
    with engine.connect() as connection:
        found, before = [], None
        while page := page_jobs(connection, job_filter, limit=3, before_id=before):
            found += [job.jid for job in page]
            before = page[-1].id
        assert found == expected(ledger, job_filter)
        assert count_jobs(connection, job_filter) == len(found)


@pytest.mark.parametrize("read", ["page", "count"])
@pytest.mark.parametrize(("queue", "index"), [("rare", "ix_jobs_queue_id"), ("busy", "ix_jobs_status_id")])
def test_sqlite_reads_a_small_queue_through_its_index_and_a_large_one_by_status(
    engine: Engine, ledger: dict[str, tuple[str, JobStatus]], read: str, queue: str, index: str
) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL's planner chooses from its own statistics")
    job_filter = JobFilter(status=JobStatus.COMPLETE, queue=queue)
    with engine.connect() as connection:
        with statements(engine) as seen:
            if read == "page":
                page_jobs(connection, job_filter, limit=3)
            else:  # a count by status and queue alone reads store.job_counts; this one the jobs
                count_jobs(connection, replace(job_filter, status=None, duration_from=DurationOrigin.STARTED))
        statement, parameters = seen[-1]
        assert f"USING INDEX {index}" in plan(connection, statement, parameters)


def test_the_migrations_build_the_queue_index_the_schema_declares(engine: Engine) -> None:
    declared = {index.name: [column.name for column in index.columns] for index in jobs.indexes}
    built = {index["name"]: index["column_names"] for index in inspect(engine).get_indexes("jobs")}
    assert declared["ix_jobs_queue_id"] == built["ix_jobs_queue_id"] == ["queue", "id"]
