"""The alert loop against real receivers, the real Redis and both databases: an SMTP server gets
the email, an HTTP server the webhook and Slack's payload, each followed by its resolved notice;
grouping, the rate limit, retries to a receiver that was down, and leadership.

Each pass is run by hand (``Alerter.check``, which delivers before it returns); a clock passed in
stands for the minutes a window or a retry takes.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import orjson
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from sidekiq_supervisor.domain.alerts import Condition, DeliveryStatus, Finding, compose
from sidekiq_supervisor.domain.model import EventKind, Report, micros_from_seconds
from sidekiq_supervisor.services.alerting import Alerter, AlertRules
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.notifier import Notifier, RetryPolicy
from sidekiq_supervisor.services.recovery import Recoverer
from sidekiq_supervisor.sidekiq_redis.enqueue import SidekiqEnqueuer
from sidekiq_supervisor.sidekiq_redis.snapshot import SidekiqReader
from sidekiq_supervisor.store import alerts as store
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.leadership import ALERTS_LOCK_KEY
from sidekiq_supervisor.store.migrate import alembic_config, current_revision, upgrade
from sidekiq_supervisor.store.schema import metadata
from sidekiq_supervisor.store.writer import write_reports
from tests.receivers import HttpReceiver, SlackProxy, SmtpReceiver, free_port, text_of

LIVE = "web-1:10:aaaaaaaaaaaa"
GONE = "web-2:11:bbbbbbbbbbbb"
OTHER_GONE = "web-3:12:cccccccccccc"
# Every rule off: each test turns on the ones it is about.
OFF = AlertRules(0, 0, 0, 0, 0, 0, 60, 0, 20, 15, 0)


class Clock:
    """Time as the test says: now, plus what the test moved it on by."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def report(
    engine,
    jid: str,
    kind: EventKind,
    ago: float,
    *,
    identity: str | None = None,
    job_class: str = "ReportJob",
    recorded_ago: float = 0.0,
    now: float | None = None,
) -> None:
    worker = None if identity is None else orjson.dumps({"identity": identity}).decode()
    at = micros_from_seconds((now or time.time()) - ago)
    job = Report(jid, kind, at, job_class, "default", "[1]", worker=worker)
    with write_transaction(engine) as connection:
        write_reports(connection, [job], micros_from_seconds(time.time() - recorded_ago))


def start(engine, jid: str, ago: float, identity: str | None = None, job_class: str = "ReportJob") -> None:
    report(engine, jid, EventKind.STARTED, ago, identity=identity, job_class=job_class)


def complete(engine, *jids: str) -> None:
    for jid in jids:
        report(engine, jid, EventKind.COMPLETE, 0)


def live_process(redis_client, identity: str = LIVE) -> None:
    host, pid, _ = identity.split(":")
    info = {
        "hostname": host,
        "pid": int(pid),
        "identity": identity,
        "version": "7.3.9",
        "queues": ["default"],
    }
    redis_client.sadd("processes", identity)
    redis_client.hset(identity, mapping={"info": orjson.dumps(info), "beat": time.time(), "busy": 0})


def make_alerter(engine, redis_client, urls: tuple[str, ...], clock=time.time, *, max_messages: int = 10,
                 retry: RetryPolicy | None = None, **rules) -> Alerter:  # fmt: skip
    manager = JobManager(engine, SidekiqEnqueuer(redis_client), SidekiqReader(redis_client), stale_after=30)
    notifier = Notifier(
        engine, urls, name="test", clock=clock, max_messages=max_messages,
        retry=retry or RetryPolicy(first_delay=10_000_000, max_delay=60_000_000), timeout_seconds=10,
    )  # fmt: skip
    return Alerter(
        manager, notifier, replace(OFF, **rules), enabled=True, resolve_after_seconds=0, stale_after=30,
        clock=clock,
    )  # fmt: skip


@pytest.fixture
def receiver():
    server = HttpReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def smtp():
    server = SmtpReceiver().start()
    yield server
    server.stop()


def posted(receiver: HttpReceiver) -> list[dict]:
    return [json.loads(request.body) for request in receiver.received]


@pytest.mark.slow  # Apprise spaces two emails to one server 5.5 s apart (its courtesy to mail servers)
def test_an_email_tells_the_orphans_of_a_dead_process_then_that_they_are_resolved(engine, redis_client, smtp):
    live_process(redis_client)
    for jid in ("o1", "o2", "o3"):
        start(engine, jid, 600, GONE, job_class="ExportJob")
    mail = f"mailto://127.0.0.1:{smtp.port}?from=supervisor@example.com&to=ops@example.com"
    alerter = make_alerter(engine, redis_client, (mail,), orphaned=1)

    health = alerter.check()

    assert (health.led, health.opened, health.sent, health.failed) == (True, 1, 1, 0)
    (fired,) = smtp.wait_for(1)
    assert fired["To"] == "ops@example.com"
    assert fired["Subject"] == f"[test] FIRING: Orphaned jobs ({GONE})"
    assert f"3 orphaned jobs of process {GONE}, which is gone (no heartbeat) (ExportJob 3)" in text_of(fired)

    alerter.check()  # still orphaned: told once
    complete(engine, "o1", "o2", "o3")
    health = alerter.check()

    assert (health.resolved, health.sent) == (1, 1)
    _, resolved = smtp.wait_for(2)
    assert resolved["Subject"] == f"[test] RESOLVED: Orphaned jobs ({GONE})"
    assert "was 3 orphaned jobs" in text_of(resolved)
    alerter.check()
    assert len(smtp.messages) == 2


def test_a_webhook_gets_the_alert_and_its_resolution_and_a_restart_does_not_fire_it_again(
    engine, redis_client, receiver
):
    start(engine, "stuck", 2 * 3600, LIVE)
    url = f"json://{receiver.url}/hooks/supervisor"
    make_alerter(engine, redis_client, (url,), uncompleted_minutes=30).check()

    (fired,) = posted(receiver)
    assert receiver.received[0].path == "/hooks/supervisor"
    assert fired["type"] == "failure"
    assert fired["title"] == "[test] FIRING: Jobs uncompleted too long"
    assert fired["message"].startswith(
        "FIRING Jobs uncompleted too long: 1 job uncompleted for more than 30 min"
    )
    assert fired["message"].endswith("Jobs: stuck")

    # A new process (a restart) on the same ledger finds the alert open: it says nothing again.
    restarted = make_alerter(engine, redis_client, (url,), uncompleted_minutes=30)
    assert restarted.check().opened == 0
    assert len(receiver.received) == 1

    complete(engine, "stuck")
    restarted.check()

    _, resolved = posted(receiver)
    assert (resolved["type"], resolved["title"]) == ("success", "[test] RESOLVED: Jobs uncompleted too long")
    with engine.connect() as connection:
        (alert,) = store.alert_records(connection, open_only=False, limit=10)
        messages = store.message_records(connection, 10)
    assert alert.resolved_at is not None and alert.resolved_message_id == messages[0].id
    assert [m.status for m in messages] == ["sent", "sent"]
    assert [d.status for m in messages for d in m.deliveries] == [DeliveryStatus.SENT] * 2
    assert messages[0].deliveries[0].target == f"json://{receiver.url}/hooks/supervisor"


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_slack_gets_its_own_payload_for_a_failing_class_and_its_recovery(
    engine, redis_client, receiver, tmp_path, monkeypatch
):
    # Apprise's slack:// posts to https://hooks.slack.com: through a proxy that answers for it.
    proxy = SlackProxy(receiver, tmp_path).start()
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "slack.pem"))
    for n in range(4):
        report(engine, f"f{n}", EventKind.FAILED, 60, job_class="Flaky")
        report(engine, f"c{n}", EventKind.COMPLETE, 60, job_class="Flaky")
    clock = Clock()
    slack = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7/#alerts"
    alerter = make_alerter(engine, redis_client, (slack,), clock, failure_percent=25, failure_min_runs=5)
    try:
        alerter.check()
        clock.offset = 16 * 60  # the window (15 min) moves past the failures
        alerter.check()
    finally:
        proxy.stop()

    assert proxy.hosts == ["hooks.slack.com:443", "hooks.slack.com:443"]
    fired, resolved = posted(receiver)
    assert receiver.received[0].path == "/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7"
    assert fired["channel"] == "#alerts"
    (attachment,) = fired["attachments"]
    assert attachment["title"] == "[test] FIRING: Failure rate (Flaky)"
    assert attachment["text"].startswith(
        "FIRING Failure rate (Flaky): Flaky: 4 of 8 runs failed in the last 15 min"
    )
    (cleared,) = resolved["attachments"]
    assert cleared["title"] == "[test] RESOLVED: Failure rate (Flaky)"
    assert attachment["color"] != cleared["color"]  # Slack's colours: failure, then success


def test_five_hundred_orphans_of_one_dead_process_are_one_alert_and_one_message(
    engine, redis_client, receiver
):
    live_process(redis_client)
    at = micros_from_seconds(time.time() - 600)
    worker = orjson.dumps({"identity": GONE}).decode()
    reports = [
        Report(f"orphan-{n:03}", EventKind.STARTED, at, f"Job{n % 3}", "default", "[]", worker=worker)
        for n in range(500)
    ]
    with write_transaction(engine) as connection:
        write_reports(connection, reports, at)

    make_alerter(engine, redis_client, (f"json://{receiver.url}/",), orphaned=1).check()

    (message,) = posted(receiver)
    assert message["title"] == f"[test] FIRING: Orphaned jobs ({GONE})"
    assert "500 orphaned jobs of process" in message["message"]
    assert "(Job0 167, Job1 167, Job2 166)" in message["message"]
    with engine.connect() as connection:
        (alert,) = store.alert_records(connection, open_only=True, limit=10)
    assert (alert.condition, alert.subject, alert.count, len(alert.sample)) == (
        Condition.ORPHANED,
        GONE,
        500,
        5,
    )


def test_the_rate_limit_holds_notices_and_sends_them_together_when_it_allows(engine, redis_client, receiver):
    live_process(redis_client)
    clock = Clock()
    alerter = make_alerter(
        engine, redis_client, (f"json://{receiver.url}/",), clock, max_messages=1, orphaned=1
    )
    start(engine, "a", 600, GONE)
    alerter.check()
    assert len(receiver.received) == 1

    start(engine, "b", 600, OTHER_GONE)
    complete(engine, "a")
    alerter.check()  # one alert opened, one resolved: both wait (one message an hour)
    assert len(receiver.received) == 1
    assert alerter.notifier.next_message_at() > micros_from_seconds(clock() + 59 * 60)
    alerter.check()
    assert len(receiver.received) == 1

    clock.offset = 61 * 60
    alerter.check()

    _, together = posted(receiver)
    assert together["title"] == "[test] 1 firing, 1 resolved"
    firing, resolved = together["message"].split("\n\n")
    assert firing.startswith(f"FIRING Orphaned jobs ({OTHER_GONE})")
    assert resolved.startswith(f"RESOLVED Orphaned jobs ({GONE}) after")


def test_a_receiver_that_was_down_gets_every_message_in_order_when_it_is_back(engine, redis_client):
    port = free_port()
    clock = Clock()
    alerter = make_alerter(
        engine, redis_client, (f"json://127.0.0.1:{port}/",), clock, uncompleted_minutes=30
    )
    start(engine, "stuck", 2 * 3600)

    health = alerter.check()

    assert (health.opened, health.sent, health.failed) == (1, 0, 1)
    with engine.connect() as connection:
        ((delivery,),) = [m.deliveries for m in store.message_records(connection, 10)]
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.PENDING, 1)
    assert "Connection error" in (delivery.error or "")
    complete(engine, "stuck")
    assert alerter.check().failed == 0  # the resolved notice queues behind; nothing is due yet

    receiver = HttpReceiver(port).start()
    try:
        assert alerter.check().sent == 0  # the retry is not due yet (10 s)
        clock.offset = 11
        assert alerter.check().sent == 2
    finally:
        receiver.stop()
    assert [m["title"] for m in posted(receiver)] == [
        "[test] FIRING: Jobs uncompleted too long",
        "[test] RESOLVED: Jobs uncompleted too long",
    ]


def test_a_delivery_is_given_up_after_its_time(engine, redis_client):
    clock = Clock()
    retry = RetryPolicy(first_delay=1_000_000, max_delay=1_000_000, give_up_after=60_000_000)
    url = f"json://127.0.0.1:{free_port()}/"
    alerter = make_alerter(engine, redis_client, (url,), clock, retry=retry, uncompleted_minutes=30)
    start(engine, "stuck", 2 * 3600)
    alerter.check()
    clock.offset = 61
    alerter.check()
    with engine.connect() as connection:
        ((delivery,),) = [m.deliveries for m in store.message_records(connection, 10)]
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.FAILED, 2)


def test_slow_jobs_are_told_against_their_class_p99(engine, redis_client, receiver):
    now = time.time()
    for n in range(20):  # each run took 2 s
        report(engine, f"done{n}", EventKind.STARTED, 100, now=now)
        report(engine, f"done{n}", EventKind.COMPLETE, 98, now=now)
    for jid, ago in (("slow", 300), ("fine", 30)):
        start(engine, jid, ago)
    make_alerter(
        engine, redis_client, (f"json://{receiver.url}/",), slow_factor=10, slow_min_seconds=60
    ).check()
    (message,) = posted(receiver)
    assert message["title"] == "[test] FIRING: Jobs slower than their class (ReportJob)"
    assert (
        "1 ReportJob job running longer than 1 min 00 s (10 x its p99 of 2 s, at least 60 s)"
        in (message["message"])
    )


def test_no_reports_while_sidekiq_runs_is_told_and_a_report_resolves_it(engine, redis_client, receiver):
    live_process(redis_client)
    report(engine, "old", EventKind.QUEUED, 1200, recorded_ago=1200)
    alerter = make_alerter(engine, redis_client, (f"json://{receiver.url}/",), silence_minutes=15)
    alerter.check()
    report(engine, "new", EventKind.QUEUED, 0)
    alerter.check()
    fired, resolved = posted(receiver)
    assert fired["title"] == "[test] FIRING: No reports"
    assert "while 1 Sidekiq process is alive" in fired["message"]
    assert resolved["title"] == "[test] RESOLVED: No reports"


def test_recoveries_and_quarantines_are_told(engine, redis_client, receiver):
    live_process(redis_client)
    start(engine, "lost", 600, GONE, job_class="ExportJob")
    manager = JobManager(engine, SidekiqEnqueuer(redis_client), SidekiqReader(redis_client), stale_after=30)
    Recoverer(manager, engine, unknown_after=None).recover()
    start(engine, "poison", 600, GONE, job_class="PoisonJob")
    Recoverer(manager, engine, unknown_after=None, max_attempts=0).recover()

    make_alerter(engine, redis_client, (f"json://{receiver.url}/",), recovered=1, quarantined=1).check()

    (message,) = posted(receiver)
    assert message["title"] == "[test] 2 firing"
    recovered, quarantined = message["message"].split("\n\n")
    assert recovered.startswith(
        "FIRING Jobs recovered: 1 job recovered (pushed again) in the last 1 h (ExportJob 1)"
    )
    assert quarantined.startswith("FIRING Jobs quarantined: 1 job quarantined in Sidekiq's Dead set")
    assert "(PoisonJob 1)" in quarantined


def test_sidekiq_unreadable_leaves_its_alerts_open_rather_than_resolved(engine, redis_client, receiver):
    live_process(redis_client)
    start(engine, "o", 600, GONE)
    url = (f"json://{receiver.url}/",)
    make_alerter(engine, redis_client, url, orphaned=1).check()
    blind = make_alerter(engine, redis_client, url, orphaned=1)
    blind._manager.liveness._reader = None  # no Sidekiq Redis configured, as with REDIS_URL empty

    health = blind.check()

    assert health.unchecked == (
        "orphaned jobs and silence: no Sidekiq Redis is configured (REDIS_URL is not set)",
    )
    assert health.resolved == 0 and len(receiver.received) == 1


@pytest.mark.parametrize("ledger_url", ["postgres"], indirect=True)
def test_on_postgresql_one_process_runs_the_alerts_at_a_time(engine, redis_client, receiver):
    start(engine, "stuck", 2 * 3600)
    alerter = make_alerter(engine, redis_client, (f"json://{receiver.url}/",), uncompleted_minutes=30)
    with engine.connect() as other_process:
        other_process.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ALERTS_LOCK_KEY})
        health = alerter.check()
        assert (health.led, health.leader, health.opened) == (False, "another", 0)
        other_process.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ALERTS_LOCK_KEY})
    assert alerter.check().opened == 1
    assert len(receiver.received) == 1


def test_two_processes_never_open_an_alert_or_tell_a_notice_twice(engine):
    finding = Finding(Condition.SILENCE, "", 20, "quiet")
    with write_transaction(engine) as connection:
        assert store.open_alert(connection, finding, 1)
        assert not store.open_alert(connection, finding, 2)  # the other process's try
        notices = store.waiting_notices(connection)
        message = store.record_message(connection, _message(), 3, (), notices)
    with pytest.raises(store.NoticeTaken), write_transaction(engine) as connection:
        store.record_message(connection, _message(), 4, (), notices)  # read before the first told it
    with engine.connect() as connection:
        assert [m.id for m in store.message_records(connection, 10)] == [message]
        assert store.waiting_notices(connection) == []


def _message():
    return compose([], "t")


def test_the_migration_adds_the_alert_tables_to_a_ledger_that_has_jobs(engine):
    command.downgrade(alembic_config(engine), "0006")
    assert current_revision(engine) == "0006"
    with engine.begin() as connection:  # a row of that revision's table (today's writer needs later ones)
        connection.execute(
            text(
                "INSERT INTO jobs (jid, job_class, queue, arguments, status, started_at, attempts) "
                "VALUES ('kept', 'W', 'default', '[]', 'started', 1, 1)"
            )
        )

    upgrade(engine)

    with engine.connect() as connection:
        assert connection.execute(text("SELECT jid FROM jobs")).scalars().all() == ["kept"]
        assert store.alert_records(connection, open_only=False, limit=10) == []
        # What the migration made is what the schema module says.
        tables = {"alerts", "alert_messages", "alert_deliveries"}

        def ours(item, name, kind, reflected, compare_to):
            return (name if kind == "table" else item.table.name) in tables

        context = MigrationContext.configure(connection, opts={"include_object": ours})
        assert compare_metadata(context, metadata) == []


def test_a_message_for_a_url_no_longer_configured_is_dropped_not_retried(engine, receiver):
    old = Notifier(engine, (f"json://127.0.0.1:{free_port()}/old",), name="test")
    assert old.queue_test() == 1
    now = Notifier(engine, (f"json://{receiver.url}/new",), name="test")

    tally = now.deliver_due()

    assert (tally.sent, tally.failed) == (0, 0)
    with engine.connect() as connection:
        ((delivery,),) = [m.deliveries for m in store.message_records(connection, 10)]
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DROPPED, 0)
    assert delivery.error == "its URL is no longer in SUPERVISOR_NOTIFY"
    assert receiver.received == []
