"""Liveness and restarts against Redis data written by real Sidekiq 6, 7 and 8 processes."""

from __future__ import annotations

import time

import orjson
import pytest

from sidekiq_supervisor.domain.liveness import Liveness
from sidekiq_supervisor.domain.model import EventKind, Report, micros_from_seconds
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.ledger import JobFilter, Ledger
from sidekiq_supervisor.services.liveness import LivenessChecker
from sidekiq_supervisor.services.restart import Restarter
from sidekiq_supervisor.sidekiq_redis.enqueue import SidekiqEnqueuer
from sidekiq_supervisor.sidekiq_redis.snapshot import SidekiqReader
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.writer import write_reports
from tests.sidekiq_fixtures import VERSIONS, identity, jids_of, load, running_jids


def start(engine, jid: str, at: float, worker: dict | None) -> None:
    report = Report(
        jid,
        EventKind.STARTED,
        micros_from_seconds(at),
        "LongJob",
        "default",
        "[1]",
        worker=None if worker is None else orjson.dumps(worker).decode(),
    )
    with write_transaction(engine) as connection:
        write_reports(connection, [report], report.at)


@pytest.fixture(params=VERSIONS)
def sidekiq(request, redis_client):
    """A Redis holding a real Sidekiq's data, and the capture time to use as now."""
    return load(redis_client, request.param)


def scenario(engine, dump) -> dict[str, Liveness]:
    """Uncompleted jobs in every situation, and the liveness each must get."""
    now, process = dump["captured_at"], identity(dump)
    running = sorted(running_jids(dump))[0]
    retrying = sorted(jids_of(dump, "retry"))[0]
    start(engine, running, now - 9, {"identity": process})
    start(engine, retrying, now - 20, {"identity": process})
    start(engine, "a" * 24, now - 600, {"identity": "vm:1:000000000000"})  # its process is gone
    start(engine, "b" * 24, now - 600, {"identity": process})  # alive, but no longer runs it
    start(
        engine, "c" * 24, now - 0.5, {"hostname": "vm", "pid": int(process.split(":")[1])}
    )  # after the beat
    start(engine, "d" * 24, now - 600, None)  # the seed's middleware reports no worker
    return {
        running: Liveness.RUNNING,
        retrying: Liveness.RETRYING,
        "a" * 24: Liveness.ORPHANED,
        "b" * 24: Liveness.ORPHANED,
        "c" * 24: Liveness.RUNNING,
        "d" * 24: Liveness.UNKNOWN,
    }


def checker(redis_client, dump) -> LivenessChecker:
    return LivenessChecker(SidekiqReader(redis_client), stale_after=60, clock=lambda: dump["captured_at"])


def test_every_uncompleted_job_is_classified_by_what_sidekiq_shows(engine, redis_client, sidekiq):
    expected = scenario(engine, sidekiq)
    ledger = Ledger(engine)

    rows = list(checker(redis_client, sidekiq).classify_all(ledger.iterate(JobFilter())))

    assert {row.job.jid: row.verdict.liveness for row in rows} == expected


def test_a_restart_takes_orphaned_and_unknown_jobs_and_skips_the_others_with_the_reason(
    engine, redis_client, sidekiq
):
    expected = scenario(engine, sidekiq)
    ledger = Ledger(engine)
    restarter = Restarter(ledger, SidekiqEnqueuer(redis_client), checker(redis_client, sidekiq))
    queued_before = redis_client.llen("queue:default")

    report = restarter.restart(JobFilter())

    restartable = {jid for jid, liveness in expected.items() if liveness.restartable}
    assert {outcome.original.jid for outcome in report.restarted} == restartable
    skipped = {outcome.original.jid: outcome.reason for outcome in report.skipped}
    assert set(skipped) == set(expected) - restartable
    assert all(reason.split(":")[0] in ("running", "retrying") for reason in skipped.values())
    assert redis_client.llen("queue:default") == queued_before + len(restartable)
    # The unit of the pushed times follows the version the live process runs (the default is 7).
    pushed = [orjson.loads(raw) for raw in redis_client.lrange("queue:default", 0, len(restartable) - 1)]
    in_milliseconds = sidekiq["sidekiq_version"].startswith("8")
    assert all(isinstance(job["enqueued_at"], int) is in_milliseconds for job in pushed)


def test_the_job_manager_answers_the_liveness_question(engine, redis_client):
    manager = JobManager(engine, SidekiqEnqueuer(redis_client), SidekiqReader(redis_client))
    start(engine, "e" * 24, 1.0, None)

    (row,) = manager.uncompleted_jobs_liveness()

    assert row.verdict.liveness is Liveness.UNKNOWN
    assert "uncompleted" in repr(manager.uncompleted_jobs_liveness())


def test_the_job_manager_answers_the_liveness_question_a_page_at_a_time(engine, redis_client):
    manager = JobManager(engine, SidekiqEnqueuer(redis_client), SidekiqReader(redis_client))
    for n in range(5):
        start(engine, f"{n:024x}", 1.0 + n, None)

    first = manager.uncompleted_jobs_liveness_page(limit=2)
    second = manager.uncompleted_jobs_liveness_page(limit=2, cursor=first.next_cursor)
    last = manager.uncompleted_jobs_liveness_page(limit=2, cursor=second.next_cursor)

    pages = [[row.job.jid for row in page.report] for page in (first, second, last)]
    every = [row.job.jid for row in manager.uncompleted_jobs_liveness()]
    assert pages == [every[0:2], every[2:4], every[4:]]
    assert last.next_cursor is None
    assert "uncompleted" in repr(first.report)


@pytest.mark.slow  # waits 1.5 s for the process to be taken for gone, and more
@pytest.mark.parametrize("version", VERSIONS)
def test_wait_decides_a_job_of_a_quiet_process_once_it_is_taken_for_gone(engine, redis_client, version):
    dump = load(redis_client, version)
    now, process = dump["captured_at"], identity(dump)
    running = sorted(running_jids(dump))[0]
    start(engine, running, now - 9, {"identity": process})
    beat_age = now - float(redis_client.hget(process, "beat"))
    stale_after = beat_age + 1.5  # the process is taken for gone 1.5 s from "now"
    began = time.monotonic()

    def checker_now() -> LivenessChecker:
        # Sidekiq's data is frozen in the dump: its clock moves on from the capture time.
        clock = lambda: now + (time.monotonic() - began)  # noqa: E731
        return LivenessChecker(SidekiqReader(redis_client), stale_after=stale_after, clock=clock)

    restarter = Restarter(Ledger(engine), SidekiqEnqueuer(redis_client), checker_now())
    (skipped,) = restarter.restart(JobFilter()).skipped
    assert skipped.original.jid == running
    assert f"taken for gone at {stale_after:g} s" in skipped.reason

    waited = Restarter(Ledger(engine), SidekiqEnqueuer(redis_client), checker_now()).restart(
        JobFilter(), wait=True
    )

    assert [outcome.original.jid for outcome in waited.restarted] == [running]
    assert waited.skipped == []


def test_a_job_that_completes_while_the_restart_waits_is_left_alone_and_said_so(engine, redis_client):
    dump = load(redis_client, VERSIONS[-1])
    now, process = dump["captured_at"], identity(dump)
    running = sorted(running_jids(dump))[0]
    start(engine, running, now - 9, {"identity": process})
    stale_after = now - float(redis_client.hget(process, "beat")) + 0.5
    began = time.monotonic()
    checker = LivenessChecker(
        SidekiqReader(redis_client), stale_after=stale_after, clock=lambda: now + (time.monotonic() - began)
    )

    def wait_while_it_completes(seconds: float) -> None:
        time.sleep(seconds)
        complete = Report(running, EventKind.COMPLETE, micros_from_seconds(now), "LongJob", "default", "[1]")
        with write_transaction(engine) as connection:
            write_reports(connection, [complete], complete.at)

    restarter = Restarter(
        Ledger(engine), SidekiqEnqueuer(redis_client), checker, sleep=wait_while_it_completes
    )
    report = restarter.restart(JobFilter(), wait=True)

    assert report.restarted == [], report
    ((skipped, reason),) = [(o.original.jid, o.reason) for o in report.skipped]
    assert skipped == running and "completed" in reason, report
