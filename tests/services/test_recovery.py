"""Automatic recovery against the real Redis and both databases: what one pass pushes, what it
leaves, what it records, and that a second pass or a second process pushes nothing again."""

from __future__ import annotations

import re
import time

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from typer.testing import CliRunner

from sidekiq_supervisor.cli.main import app
from sidekiq_supervisor.domain.model import EventKind, Report, micros_from_seconds
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.job_payloads import PayloadSeal, kept_keys
from sidekiq_supervisor.services.prometheus.instruments import ClassLabels, InstrumentFamilies
from sidekiq_supervisor.services.recovery import Recoverer
from sidekiq_supervisor.services.restart import RestartFailed
from sidekiq_supervisor.sidekiq_redis.enqueue import SidekiqEnqueuer
from sidekiq_supervisor.sidekiq_redis.snapshot import SidekiqReader
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.leadership import RECOVERY_LOCK_KEY
from sidekiq_supervisor.store.queries import job_history
from sidekiq_supervisor.store.writer import write_reports
from sidekiq_supervisor.web.app import create_app
from tests.e2e.real_sidekiq import wait_until
from tests.store.job_count_checks import assert_counts_match

LIVE = "web-1:10:aaaaaaaaaaaa"
GONE = "web-2:11:bbbbbbbbbbbb"


def start(engine, jid: str, ago: float, identity: str | None) -> None:
    worker = None if identity is None else orjson.dumps({"identity": identity}).decode()
    at = micros_from_seconds(time.time() - ago)
    report = Report(jid, EventKind.STARTED, at, "ReportJob", "default", "[1]", worker=worker)
    with write_transaction(engine) as connection:
        write_reports(connection, [report], at)


def live_process(redis_client, running_jid: str) -> None:
    """A Sidekiq 7 process that beat just now and runs ``running_jid``."""
    info = {"hostname": "web-1", "pid": 10, "identity": LIVE, "version": "7.3.9", "queues": ["default"]}
    redis_client.sadd("processes", LIVE)
    redis_client.hset(LIVE, mapping={"info": orjson.dumps(info), "beat": time.time(), "busy": 1})
    payload = orjson.dumps({"class": "ReportJob", "jid": running_jid, "args": [1]}).decode()
    work = {"queue": "default", "payload": payload, "run_at": int(time.time())}
    redis_client.hset(f"{LIVE}:work", "t1", orjson.dumps(work))


@pytest.fixture
def lost_and_living(engine, redis_client) -> dict[str, str]:
    live_process(redis_client, "r" * 24)
    cases = {
        "r" * 24: ("running", 60, LIVE),
        "g" * 24: ("process gone", 600, GONE),
        "b" * 24: ("alive, not running it", 600, LIVE),
        "d" * 24: ("in the Dead set", 600, GONE),
        "y" * 24: ("waiting for a retry", 600, GONE),
        "u" * 24: ("no identity", 600, None),
    }
    for jid, (_what, ago, identity) in cases.items():
        start(engine, jid, ago, identity)
    dead = orjson.dumps({"class": "ReportJob", "jid": "d" * 24, "args": [1]})
    redis_client.zadd("dead", {dead: time.time()})
    retry = orjson.dumps({"class": "ReportJob", "jid": "y" * 24, "args": [1]})
    redis_client.zadd("retry", {retry: time.time() + 600})
    return {jid: what for jid, (what, _ago, _identity) in cases.items()}


def manager(engine, redis_client) -> JobManager:
    return JobManager(engine, SidekiqEnqueuer(redis_client), SidekiqReader(redis_client), stale_after=30)


def test_a_pass_pushes_only_the_jobs_whose_process_is_gone_and_records_why(
    engine, redis_client, lost_and_living
):
    recoverer = Recoverer(manager(engine, redis_client), engine, unknown_after=None)

    (outcome,) = recoverer.recover()

    assert outcome.original.jid == "g" * 24 and outcome.taken
    assert outcome.reason == f"its process {GONE} is gone (no heartbeat)"
    (pushed,) = [orjson.loads(raw) for raw in redis_client.lrange("queue:default", 0, -1)]
    assert pushed["jid"] == outcome.new_jid and pushed["class"] == "ReportJob" and pushed["args"] == [1]
    with engine.connect() as connection:
        (restarted,) = [e for e in job_history(connection, "g" * 24) if e.kind is EventKind.RESTARTED]
    assert orjson.loads(restarted.detail) == {
        "new_jid": outcome.new_jid,
        "recovered": outcome.reason,
        "attempt": 1,
        "job_class": "ReportJob",
        "queue": "default",
        "arguments": "[1]",
    }
    # A second pass finds nothing: the original is gone from the uncompleted jobs, and its copy
    # is queued, not started.
    assert recoverer.recover() == []
    assert redis_client.llen("queue:default") == 1


def test_jobs_without_identity_are_recovered_once_the_operator_chose_an_age(
    engine, redis_client, lost_and_living
):
    recovered = Recoverer(manager(engine, redis_client), engine, unknown_after=300).recover()
    assert sorted(outcome.original.jid for outcome in recovered) == ["g" * 24, "u" * 24]


@pytest.mark.parametrize("ledger_url", ["postgres"], indirect=True)
def test_on_postgresql_one_process_recovers_at_a_time(engine, redis_client, lost_and_living):
    recoverer = Recoverer(manager(engine, redis_client), engine, unknown_after=None)
    with engine.connect() as other_process:
        other_process.execute(text("SELECT pg_advisory_lock(:key)"), {"key": RECOVERY_LOCK_KEY})
        assert recoverer.recover() == []  # another process leads: this one pushes nothing
        other_process.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": RECOVERY_LOCK_KEY})
    assert [outcome.original.jid for outcome in recoverer.recover()] == ["g" * 24]


@pytest.mark.slow  # the app's lifespan and a pass a second
def test_serve_runs_the_pass_by_itself_when_asked_to(engine, redis_client, settings, lost_and_living):
    asked = settings.model_copy(
        update={"auto_recover": True, "recover_interval_seconds": 1, "process_stale_seconds": 30}
    )
    with TestClient(create_app(asked)) as client:
        wait_until("the lost job is pushed", lambda: redis_client.llen("queue:default") == 1)
        restarted = [e for e in client.get(f"/api/v1/jobs/{'g' * 24}/history").json()["history"]
                     if e["event"] == "restarted"]  # fmt: skip
        loop = client.get("/api/v1/recoveries").json()["loop"]
        page = client.get("/recoveries").text
    assert 'data-loop="state">on, a pass every 1' in page
    assert loop["enabled"] is True and loop["interval_seconds"] == 1
    assert loop["last_pass_at"] is not None and loop["led_last_pass"] is True and loop["error"] is None
    assert loop["next_pass_at"] > loop["last_pass_at"] and loop["last_pass_leader"].startswith("this process")
    assert 'data-loop="next">' in page and "run by this process" in page
    assert restarted[0]["detail"]["recovered"] == f"its process {GONE} is gone (no heartbeat)"


@pytest.mark.slow  # it waits for passes that must not happen
def test_serve_leaves_lost_jobs_alone_unless_asked(engine, redis_client, settings, lost_and_living):
    with TestClient(create_app(settings.model_copy(update={"recover_interval_seconds": 1}))) as client:
        time.sleep(2.5)
        assert client.get("/healthz").status_code == 200
    assert redis_client.llen("queue:default") == 0


def test_a_job_lost_again_and_again_is_quarantined_in_the_dead_set_after_the_last_attempt(
    engine, redis_client, settings
):
    live_process(redis_client, "r" * 24)
    recoverer = Recoverer(manager(engine, redis_client), engine, unknown_after=None, max_attempts=2)
    jid, chain = "p" * 24, []
    start(engine, jid, 600, GONE)
    for attempt in (1, 2):
        (outcome,) = recoverer.recover()
        assert (outcome.original.jid, outcome.taken, outcome.quarantined) == (jid, True, False)
        chain.append(jid)
        jid = outcome.new_jid
        start(engine, jid, 60, GONE)  # the copy starts, and its process dies too
        with engine.connect() as connection:
            (event,) = [e for e in job_history(connection, chain[-1]) if e.kind is EventKind.RESTARTED]
        assert orjson.loads(event.detail)["attempt"] == attempt
    redis_client.delete("queue:default")

    (outcome,) = recoverer.recover()

    assert outcome.quarantined and not outcome.taken and outcome.original.jid == jid
    assert outcome.reason.startswith("lost 3 times along its restarts")
    assert redis_client.llen("queue:default") == 0  # not pushed again
    (member,) = redis_client.zrange("dead", 0, -1)
    dead = orjson.loads(member)
    assert (dead["class"], dead["args"], dead["queue"]) == ("ReportJob", [1], "default")
    assert dead["error_class"] == "SidekiqSupervisor::Quarantined" and dead["error_message"] == outcome.reason
    with engine.connect() as connection:
        (quarantined,) = [e for e in job_history(connection, jid) if e.kind is EventKind.QUARANTINED]
    assert orjson.loads(quarantined.detail) == {
        "reason": outcome.reason, "job_class": "ReportJob", "queue": "default", "arguments": "[1]"
    }  # fmt: skip
    assert recoverer.recover() == []  # it left the uncompleted jobs
    assert_counts_match(engine)
    with TestClient(create_app(settings)) as client:
        first, last = client.get(f"/jobs/{chain[0]}").text, client.get(f"/jobs/{jid}").text
    assert f"recovered automatically (attempt 1): its process {GONE} is gone" in first
    assert "quarantined in Sidekiq&#39;s Dead set: lost 3 times" in last


def test_the_api_lists_what_recovery_did_and_how_its_loop_is_doing(engine, redis_client, settings):
    live_process(redis_client, "r" * 24)
    start(engine, "p" * 24, 600, GONE)
    recoverer = Recoverer(manager(engine, redis_client), engine, unknown_after=None, max_attempts=1)
    (first,) = recoverer.recover()
    start(engine, first.new_jid, 60, GONE)
    (second,) = recoverer.recover()  # lost again: quarantined

    with TestClient(create_app(settings)) as client:
        body = client.get("/api/v1/recoveries").json()
        limited = client.get("/api/v1/recoveries", params={"limit": 1}).json()
        page = client.get("/recoveries").text

    assert [(r["event"], r["jid"]) for r in body["data"]] == [
        ("quarantined", first.new_jid),
        ("recovered", "p" * 24),
    ]
    assert body["data"][1] == {
        "jid": "p" * 24, "event": "recovered", "at": body["data"][1]["at"], "new_jid": first.new_jid,
        "attempt": 1, "reason": f"its process {GONE} is gone (no heartbeat)",
        "job_class": "ReportJob", "queue": "default", "arguments": "[1]",
    }  # fmt: skip
    assert body["per_class"] == {
        "hours": 24, "data": [{"job_class": "ReportJob", "recovered": 1, "quarantined": 1}]
    }  # fmt: skip
    assert body["data"][0]["reason"] == second.reason
    assert len(limited["data"]) == 1
    # This app's loop is off (the passes above ran outside it): it says so, and has not run.
    assert body["loop"]["enabled"] is False and body["loop"]["last_pass_at"] is None
    rows = re.findall(r'<tr data-jid="([^"]+)">', page)
    assert re.search(r'data-class="ReportJob">.*?>1</td><td class="num">1</td>', page)
    assert rows == [first.new_jid, "p" * 24] and 'data-loop="state">Off.' in page
    assert "attempt 1" in page and second.reason in page

    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": ""}
    printed = CliRunner().invoke(app, ["recoveries", "--json"], env=env)
    assert printed.exit_code == 0, printed.output
    assert [orjson.loads(line) for line in printed.output.splitlines()] == body["data"]
    lines = CliRunner().invoke(app, ["recoveries"], env=env).output.splitlines()
    assert "quarantined" in lines[0]
    assert f"recovered    {'p' * 24} ReportJob as {first.new_jid} (attempt 1)" in lines[1]


def test_recoveries_are_found_by_their_arguments_like_every_list(engine, redis_client, settings):
    live_process(redis_client, "r" * 24)
    for jid, arguments in (("a" * 24, '["Alice@Example.com"]'), ("b" * 24, '["bob@example.com"]')):
        at = micros_from_seconds(time.time() - 600)
        worker = orjson.dumps({"identity": GONE}).decode()
        with write_transaction(engine) as connection:
            write_reports(
                connection,
                [Report(jid, EventKind.STARTED, at, "MailJob", "mail", arguments, worker=worker)],
                at,
            )
    recovered = Recoverer(manager(engine, redis_client), engine, unknown_after=None).recover()
    assert len(recovered) == 2

    found = manager(engine, redis_client).recoveries("alice@")
    with TestClient(create_app(settings)) as client:
        body = client.get("/api/v1/recoveries", params={"q": "ALICE"}).json()

    assert [(r.jid, r.job_class, r.queue) for r in found] == [("a" * 24, "MailJob", "mail")]
    assert [r["jid"] for r in body["data"]] == ["a" * 24]
    assert body["per_class"]["data"] == [{"job_class": "MailJob", "recovered": 2, "quarantined": 0}]


def test_each_pass_counts_what_it_recovered_and_quarantined_for_metrics(engine, redis_client):
    live_process(redis_client, "r" * 24)
    start(engine, "p" * 24, 600, GONE)
    registry = CollectorRegistry()
    instruments = InstrumentFamilies(registry).for_app("default", ClassLabels(0))
    recoverer = Recoverer(
        manager(engine, redis_client), engine, unknown_after=None, max_attempts=1, instruments=instruments
    )

    (first,) = recoverer.recover()
    start(engine, first.new_jid, 60, GONE)
    recoverer.recover()  # lost again: quarantined
    recoverer.recover()  # nothing left

    assert registry.get_sample_value("supervisor_recovered_jobs_total", {"app": "default"}) == 1
    assert registry.get_sample_value("supervisor_quarantined_jobs_total", {"app": "default"}) == 1


def test_recovered_jobs_can_go_to_another_queue_and_excluded_ones_stay(engine, redis_client, settings):
    live_process(redis_client, "r" * 24)
    start(engine, "g" * 24, 600, GONE)
    for jid, job_class in (("x" * 24, "Billing::ChargeJob"), ("o" * 24, "ReportJob")):
        at = micros_from_seconds(time.time() - 600)
        worker = orjson.dumps({"identity": GONE}).decode()
        # The gem keeps the job's own options: ReportJob's say supervisor_recover: false.
        payload = {"supervisor_recover": False} if job_class == "ReportJob" else None
        report = Report(jid, EventKind.STARTED, at, job_class, "default", "[1]", worker=worker,
                        payload_form="plain" if payload else None,
                        payload=orjson.dumps(payload).decode() if payload else None)  # fmt: skip
        with write_transaction(engine) as connection:
            write_reports(connection, [report], at)
    recoverer = Recoverer(
        manager(engine, redis_client), engine, unknown_after=None, queue="recovered", exclude=("Billing::*",)
    )

    (outcome,) = recoverer.recover()

    assert outcome.original.jid == "g" * 24
    (pushed,) = [orjson.loads(raw) for raw in redis_client.lrange("queue:recovered", 0, -1)]
    assert (pushed["jid"], pushed["queue"]) == (outcome.new_jid, "recovered")
    assert b"recovered" in redis_client.smembers("queues") and redis_client.llen("queue:default") == 0
    # The excluded ones are still there, as orphans a person may restart.
    with TestClient(create_app(settings)) as client:
        left = {row["jid"]: row["liveness"] for row in client.get("/api/v1/liveness").json()["data"]}
        copy = client.get(f"/api/v1/jobs/{outcome.new_jid}").json()
    assert left["x" * 24] == "orphaned" and left["o" * 24] == "orphaned"
    assert copy["queue"] == "recovered"


def test_a_jobs_own_opt_out_is_read_from_a_sealed_payload_too():
    seal = PayloadSeal((PayloadSeal.new_key(),))
    token = seal.seal(b'{"supervisor_recover":false,"retry":3,"args":["s3cret"]}')
    assert kept_keys("sealed", token, seal) == {"supervisor_recover": False, "retry": 3}
    assert kept_keys("plain", '{"supervisor_recover":false}', seal) == {"supervisor_recover": False}
    assert kept_keys("sealed", token, PayloadSeal(())) is None  # no key: unreadable, not an opt-out
    assert kept_keys(None, None, seal) is None and kept_keys("withheld", None, seal) is None


def test_a_pass_pushes_in_batches_and_a_batch_redis_refused_part_of_is_pushed_once_on_the_next_pass(
    engine, redis_client
):
    # 250 lost jobs: three batches. One job's queue is a string in Redis, so the batch holding it
    # fails part-way (its other pushes are done and marked); the ledger keeps its originals.
    jids = [f"lost{n:020d}" for n in range(250)]
    at = micros_from_seconds(time.time() - 600)
    worker = orjson.dumps({"identity": GONE}).decode()
    reports = [
        Report(
            jid,
            EventKind.STARTED,
            at,
            "ReportJob",
            "broken" if n == 120 else "default",
            f"[{n}]",
            worker=worker,
        )
        for n, jid in enumerate(jids)
    ]
    with write_transaction(engine) as connection:
        write_reports(connection, reports, at)
    redis_client.set("queue:broken", "not a list")
    recoverer = Recoverer(manager(engine, redis_client), engine, unknown_after=None)

    with pytest.raises(RestartFailed, match="WRONGTYPE"):
        recoverer.recover()
    ledger = manager(engine, redis_client)
    taken = sum(ledger.job(jid) is None for jid in jids)
    assert taken % 100 == 0 and taken < 250  # whole batches: the failed one left its originals
    assert redis_client.llen("queue:default") > taken  # its other pushes were done, and marked
    redis_client.delete("queue:broken")
    recovered = Recoverer(manager(engine, redis_client), engine, unknown_after=None).recover()

    assert len(recovered) == 250 - taken
    assert redis_client.llen("queue:default") == 249 and redis_client.llen("queue:broken") == 1
    queued = [orjson.loads(raw) for raw in redis_client.lrange("queue:default", 0, -1)]
    assert len({job["jid"] for job in queued}) == 249  # nothing pushed twice
    assert sorted(job["args"][0] for job in queued) == [n for n in range(250) if n != 120]
    with engine.connect() as connection:
        for jid in jids:
            assert [e.kind for e in job_history(connection, jid)].count(EventKind.RESTARTED) == 1
    assert all(ledger.job(jid) is None for jid in jids)  # every original was taken
