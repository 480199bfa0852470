"""Restarting uncompleted jobs against the real Redis and both databases."""

from __future__ import annotations

import re
from datetime import timedelta

import orjson
import pytest
import redis
from sqlalchemy import func, select

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report, micros_from_datetime
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.restart import RestartFailed
from sidekiq_supervisor.sidekiq_redis.enqueue import Push, SidekiqEnqueuer
from sidekiq_supervisor.sidekiq_redis.snapshot import SidekiqReader
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.queries import find_job, job_history
from sidekiq_supervisor.store.schema import job_events, jobs
from sidekiq_supervisor.store.writer import write_reports
from tests.store.job_count_checks import assert_counts_match

SECOND = 1_000_000
HOUR = 3600 * SECOND
JID = re.compile(r"^[0-9a-f]{24}$")


def write(engine, *reports: Report) -> None:
    with write_transaction(engine) as connection:
        write_reports(connection, reports, now_micros())


def started(engine, jid, *, queue="default", arguments='[1,"x"]', job_class="HardWorker", ago=HOUR):
    at = now_micros() - ago
    write(
        engine,
        Report(jid, EventKind.QUEUED, at - SECOND, job_class, queue, arguments),
        Report(jid, EventKind.STARTED, at, job_class, queue, arguments),
    )


def write_mixed_jobs(engine) -> None:
    started(engine, "s-alice", queue="mail", arguments='[1,"alice@example.com"]', job_class="MailWorker")
    started(engine, "s-bob", arguments='[2,"bob"]')
    now = now_micros()
    write(engine, Report("q-carol", EventKind.QUEUED, now, "HardWorker", "default", '[3,"carol"]'))
    write(
        engine,
        Report("c-dave", EventKind.STARTED, now - HOUR, "HardWorker", "default", "[4]"),
        Report("c-dave", EventKind.COMPLETE, now, "HardWorker", "default", "[4]"),
    )


def manager_on(engine, redis_client, sidekiq_version=7) -> JobManager:
    enqueuer = SidekiqEnqueuer(redis_client, sidekiq_version=sidekiq_version)
    return JobManager(engine, enqueuer, SidekiqReader(redis_client))


def payloads(redis_client, queue: str) -> list[dict]:
    return [orjson.loads(raw) for raw in redis_client.lrange(f"queue:{queue}", 0, -1)]


def ledger_snapshot(engine):
    with engine.connect() as connection:
        rows = connection.execute(select(jobs).order_by(jobs.c.id)).all()
        events = connection.execute(select(job_events).order_by(job_events.c.id)).all()
    return [tuple(row) for row in rows], [tuple(event) for event in events]


def fresh_queued_at(manager, jid):
    return micros_from_datetime(manager.job(jid).queued_at)


def history(engine, jid):
    with engine.connect() as connection:
        return [(event.kind.value, event.at) for event in job_history(connection, jid)]


def test_restart_pushes_one_sidekiq_job_per_uncompleted_job(engine, redis_client):
    write_mixed_jobs(engine)
    manager = manager_on(engine, redis_client)
    before = now_micros() / 1_000_000

    report = manager.restart_uncompleted_jobs()

    after = now_micros() / 1_000_000
    assert report.dry_run is False
    assert report.skipped == []
    new_jids = {outcome.original.jid: outcome.new_jid for outcome in report.restarted}
    assert set(new_jids) == {"s-alice", "s-bob"}
    assert all(JID.match(jid) for jid in new_jids.values())
    assert redis_client.smembers("queues") == {b"mail", b"default"}

    (mail,) = payloads(redis_client, "mail")
    assert mail["class"] == "MailWorker"
    assert mail["args"] == [1, "alice@example.com"]
    assert mail["queue"] == "mail"
    assert mail["jid"] == new_jids["s-alice"]
    assert mail["retry"] is True
    assert isinstance(mail["created_at"], float)
    assert before <= mail["created_at"] <= after
    assert mail["enqueued_at"] == mail["created_at"]
    (default,) = payloads(redis_client, "default")
    assert (default["class"], default["args"], default["jid"]) == (
        "HardWorker",
        [2, "bob"],
        new_jids["s-bob"],
    )


def test_sidekiq_8_payloads_carry_integer_milliseconds(engine, redis_client):
    started(engine, "s-eight")
    before = now_micros() // 1000

    manager_on(engine, redis_client, sidekiq_version=8).restart_uncompleted_jobs()

    (payload,) = payloads(redis_client, "default")
    assert isinstance(payload["created_at"], int)
    assert isinstance(payload["enqueued_at"], int)
    assert before <= payload["created_at"] <= now_micros() // 1000


def test_a_restarted_job_is_recorded_as_queued_and_the_original_is_deleted_with_its_history_kept(
    engine, redis_client
):
    write_mixed_jobs(engine)
    original_history = history(engine, "s-alice")
    manager = manager_on(engine, redis_client)
    before = now_micros()

    report = manager.restart_uncompleted_jobs()

    new_jid = next(o.new_jid for o in report.restarted if o.original.jid == "s-alice")
    assert manager.job("s-alice") is None
    *kept, (last_kind, last_at) = history(engine, "s-alice")
    assert kept == original_history
    assert last_kind == "restarted"
    assert last_at == fresh_queued_at(manager, new_jid)
    with engine.connect() as connection:
        assert orjson.loads(job_history(connection, "s-alice")[-1].detail) == {"new_jid": new_jid}
    fresh = manager.job(new_jid)
    assert fresh.status is JobStatus.QUEUED
    assert fresh.restarted_from == "s-alice"
    assert (fresh.job_class, fresh.queue, fresh.arguments) == ("MailWorker", "mail", [1, "alice@example.com"])
    assert fresh.attempts == 0
    assert fresh.started_at is None
    assert before <= history(engine, new_jid)[0][1] <= now_micros()
    assert [kind for kind, _ in history(engine, new_jid)] == ["queued"]
    assert list(manager.uncompleted_jobs()) == []
    assert {job.jid for job in manager.queued_jobs()} == {"q-carol", *(o.new_jid for o in report.restarted)}
    assert [job.jid for job in manager.completed_jobs()] == ["c-dave"]
    # The counts moved with the jobs, and a late report of the original brings nothing back.
    assert_counts_match(engine)
    write(engine, Report("s-alice", EventKind.COMPLETE, now_micros(), "MailWorker", "mail", "[]"))
    assert_counts_match(engine)
    assert manager.uncompleted_jobs().count() == 0
    assert manager.queued_jobs().count() == 3


def test_the_filter_limits_which_jobs_restart(engine, redis_client):
    write_mixed_jobs(engine)
    manager = manager_on(engine, redis_client)

    report = manager.restart_uncompleted_jobs("ALICE@")

    assert [o.original.jid for o in report.restarted] == ["s-alice"]
    assert redis_client.smembers("queues") == {b"mail"}
    assert redis_client.exists("queue:default") == 0
    assert [job.jid for job in manager.uncompleted_jobs()] == ["s-bob"]


def test_a_dry_run_lists_the_candidates_and_changes_nothing(engine, redis_client):
    write_mixed_jobs(engine)
    manager = manager_on(engine, redis_client)
    before = ledger_snapshot(engine)

    report = manager.restart_uncompleted_jobs(dry_run=True)

    assert report.dry_run is True
    assert sorted(o.original.jid for o in report.restarted) == ["s-alice", "s-bob"]
    assert all(o.new_jid is None for o in report.restarted)
    assert redis_client.keys("*") == []
    assert ledger_snapshot(engine) == before
    assert "would restart 2, skipped 0" in repr(report)


def test_older_than_skips_jobs_started_recently(engine, redis_client):
    started(engine, "s-old", ago=2 * HOUR)
    started(engine, "s-recent", ago=SECOND)
    manager = manager_on(engine, redis_client)

    report = manager.restart_uncompleted_jobs(older_than=timedelta(minutes=10))

    assert [o.original.jid for o in report.restarted] == ["s-old"]
    assert len(payloads(redis_client, "default")) == 1
    assert [job.jid for job in manager.uncompleted_jobs()] == ["s-recent"]
    assert "restarted 1, skipped 0" in repr(report)


@pytest.mark.slow  # a thousand jobs past a page: 3-5 s
def test_restart_walks_past_a_page_of_candidates(engine, redis_client):
    count = 1003  # the ledger iterates a thousand jobs per page
    reports = []
    for n in range(count):
        jid, args = f"many-{n:04d}", f"[{n}]"
        reports.append(Report(jid, EventKind.STARTED, now_micros() - HOUR, "HardWorker", "default", args))
    write(engine, *reports)
    manager = manager_on(engine, redis_client)

    report = manager.restart_uncompleted_jobs()

    assert sorted(o.original.jid for o in report.restarted) == [f"many-{n:04d}" for n in range(count)]
    assert redis_client.llen("queue:default") == count
    assert len({p["jid"] for p in payloads(redis_client, "default")}) == count
    assert len(manager.uncompleted_jobs()) == 0
    assert len(manager.queued_jobs()) == count


def test_an_unreachable_redis_fails_the_restart_and_leaves_the_job_as_it_was(engine):
    started(engine, "s-stuck", arguments='["stuck"]')
    before = ledger_snapshot(engine)
    nowhere = redis.Redis.from_url("redis://127.0.0.1:1/0")
    manager = JobManager(engine, SidekiqEnqueuer(nowhere), SidekiqReader(nowhere))

    with pytest.raises(RestartFailed) as failure:
        manager.restart_uncompleted_jobs()

    assert failure.value.report.restarted == []
    assert ledger_snapshot(engine) == before
    job = manager.job("s-stuck")
    assert job.status is JobStatus.STARTED
    assert [j.jid for j in manager.uncompleted_jobs()] == ["s-stuck"]
    with engine.connect() as connection:
        assert find_job(connection, "s-stuck") is not None
        assert connection.execute(select(func.count()).select_from(jobs)).scalar_one() == 1


def test_a_push_that_fails_after_sidekiq_was_read_leaves_the_job_as_it_was(engine, redis_client):
    started(engine, "s-stuck", arguments='["stuck"]')
    before = ledger_snapshot(engine)
    nowhere = redis.Redis.from_url("redis://127.0.0.1:1/0")
    manager = JobManager(engine, SidekiqEnqueuer(nowhere), SidekiqReader(redis_client))

    with pytest.raises(RestartFailed, match="refused the push"):
        manager.restart_uncompleted_jobs()

    assert ledger_snapshot(engine) == before
    assert_counts_match(engine)


def test_a_copy_that_reported_before_its_restart_was_recorded_is_linked_and_counted_once(
    engine, redis_client
):
    started(engine, "s-early", arguments='["early"]')
    enqueuer = SidekiqEnqueuer(redis_client)
    # The first run pushed and died before the ledger committed; the copy ran and reported meanwhile.
    payload = b'{"class":"K","args":["early"]}'
    (first,) = enqueuer.push_all([Push("s-early", "b" * 24, payload, queue="default")])
    started(engine, first, arguments='["early"]', ago=SECOND)

    report = manager_on(engine, redis_client).restart_uncompleted_jobs(older_than=timedelta(minutes=1))

    assert [o.new_jid for o in report.restarted] == [first]
    copy = manager_on(engine, redis_client).job(first)
    assert (copy.restarted_from, copy.status) == ("s-early", JobStatus.STARTED)
    assert_counts_match(engine)


def test_a_restart_run_again_after_a_crash_never_pushes_the_same_original_twice(engine, redis_client):
    started(engine, "s-crash", arguments='["crash"]')
    enqueuer = SidekiqEnqueuer(redis_client)
    # The first run pushed, then died before the ledger committed: Redis has the push and its marker.
    payload = b'{"class":"K","args":["crash"]}'
    (first,) = enqueuer.push_all([Push("s-crash", "a" * 24, payload, queue="default")])

    report = manager_on(engine, redis_client).restart_uncompleted_jobs()

    assert [o.new_jid for o in report.restarted] == [first]
    assert redis_client.llen("queue:default") == 1
    assert manager_on(engine, redis_client).job(first).restarted_from == "s-crash"
    assert_counts_match(engine)
