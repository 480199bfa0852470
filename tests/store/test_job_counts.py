"""The jobs per class, queue and status (``store.job_counts``, migration 0016) stay equal to a count
of the jobs whatever writes them: the writer, however its reports arrive, retention, two writers
at once, and the upgrade that fills the table. Counts by status, class and queue read them."""

from __future__ import annotations

import itertools
import random

from alembic import command
from sqlalchemy import Engine, func, inspect, select

from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.job_counts import jobs_per_status
from sidekiq_supervisor.store.migrate import alembic_config, current_revision, upgrade
from sidekiq_supervisor.store.queries import JobFilter, count_jobs, count_within
from sidekiq_supervisor.store.retention import prune_completed_batch
from sidekiq_supervisor.store.schema import job_counts, jobs
from tests.store.job_count_checks import assert_counts_match, counted_afresh, kept_counts
from tests.store.test_write_time_rollups import (
    CLASSES,
    HOUR,
    OTHER_QUEUE,
    QUEUES,
    T0,
    shuffled_reports,
    write,
    write_in_batches,
)


def test_the_counts_equal_a_count_of_the_jobs_however_the_reports_arrive(engine):
    reports = shuffled_reports(seed=21, jobs_count=500)
    waiting = [Report(f"q{n}", EventKind.QUEUED, T0 + n, "Mailer", "mailers", "[]") for n in range(30)]
    random.Random(21).shuffle(mixed := reports + waiting)
    write_in_batches(engine, mixed, seed=22)

    assert_counts_match(engine)
    # Every status is there, and jobs moved back from completed to uncompleted (a second run).
    assert {status for _class, _queue, status in counted_afresh(engine)} == {s.value for s in JobStatus}


def test_a_report_sent_again_or_late_counts_the_job_once(engine):
    queued = Report("j1", EventKind.QUEUED, T0, "Mailer", "mailers", "[]")
    started = Report("j1", EventKind.STARTED, T0 + 1, "Mailer", "mailers", "[]")
    complete = Report("j1", EventKind.COMPLETE, T0 + 2, "Mailer", "mailers", "[]")
    write(engine, [complete, started, complete])
    write(engine, [queued, started])

    assert kept_counts(engine) == {("Mailer", "mailers", "complete"): 1}


def test_retention_takes_the_jobs_it_deletes_out_of_the_counts(engine):
    write_in_batches(engine, shuffled_reports(seed=23, jobs_count=400), seed=24)
    completed_before = jobs_per_status_of(engine)[JobStatus.COMPLETE]

    with write_transaction(engine) as connection:
        batch = prune_completed_batch(connection, T0 + 36 * HOUR, 0, 10_000)

    assert batch.deleted > 50
    assert jobs_per_status_of(engine)[JobStatus.COMPLETE] == completed_before - batch.deleted
    assert_counts_match(engine)


def jobs_per_status_of(engine: Engine) -> dict[JobStatus, int]:
    with engine.connect() as connection:
        return jobs_per_status(connection)


def test_every_count_by_status_class_and_queue_is_the_number_of_matching_rows(engine):
    write_in_batches(engine, shuffled_reports(seed=25, jobs_count=300), seed=26)
    statuses = [None, *JobStatus]
    classes = [None, *CLASSES, "NeverSeen"]
    queues = [None, *QUEUES.values(), OTHER_QUEUE, "nowhere"]

    with engine.connect() as connection:
        for status, job_class, queue in itertools.product(statuses, classes, queues):
            job_filter = JobFilter(status=status, job_class=job_class, queue=queue)
            rows = select(func.count()).select_from(jobs)
            for column, value in (("status", status), ("job_class", job_class), ("queue", queue)):
                if value is not None:
                    rows = rows.where(jobs.c[column] == value)
            expected = connection.execute(rows).scalar_one()
            assert count_jobs(connection, job_filter) == expected, job_filter
    # The counts were read from the kept table: emptied, it answers 0 where the rows say more.
    with write_transaction(engine) as connection:
        connection.execute(job_counts.delete())
    with engine.connect() as connection:
        assert count_jobs(connection, JobFilter(status=JobStatus.COMPLETE)) == 0
        assert count_within(connection, JobFilter(), budget_ms=0) == 0
        # A filter the table cannot answer still counts the rows.
        assert count_jobs(connection, JobFilter(needle="[")) == 300


def test_the_upgrade_counts_the_jobs_already_stored_and_the_downgrade_drops_the_table(engine):
    write_in_batches(engine, shuffled_reports(seed=27, jobs_count=200), seed=28)
    expected = counted_afresh(engine)

    command.downgrade(alembic_config(engine), "0015")
    assert current_revision(engine) == "0015"
    assert "job_counts" not in inspect(engine).get_table_names()
    upgrade(engine)

    assert kept_counts(engine) == expected
    assert_counts_match(engine)
