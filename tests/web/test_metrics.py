"""GET /metrics on the real app, both databases and the real Redis: what each figure counts, that
the exposition parses, that the token guards it, and that it answers 200 whatever is down."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from tests import sidekiq_fixtures
from tests.live_service import free_port
from tests.reliability.proxy import tcp_proxy

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]
TOKEN = "scrape-token"
LIVE = "web-1:10:aaaaaaaaaaaa"
GONE = "web-2:11:bbbbbbbbbbbb"


def parse(text: str) -> Samples:
    """Every sample of an exposition, by name and labels (the official parser: it must parse)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: Samples, metric: str, /, **labels: str) -> float | None:
    """A sample's value; every series but the build's is an app's (``default`` unless named)."""
    if metric != "supervisor_build_info":
        labels = {"app": "default", **labels}
    return found.get((metric, tuple(sorted(labels.items()))))


def names(found: Samples) -> set[str]:
    return {name for name, _labels in found}


def scrape(client: TestClient, **headers: str) -> Samples:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(response.text)


def scrape_until(client: TestClient, check: Callable[[Samples], bool], **headers: str) -> Samples:
    """Scrape until ``check`` holds: the ledger's figures are read in the background."""
    deadline = time.monotonic() + 20
    while True:
        found = scrape(client, **headers)
        if check(found):
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"/metrics never satisfied the check; last scrape: {found}")
        time.sleep(0.05)


def report(client: TestClient, kind: str, jid: str, job_class: str, at: float | None = None, **more: str):
    fields = {"arguments": "[1]", "job_class": job_class, "queue": "default", **more}
    if at is not None:
        fields["at"] = f"{at:.6f}"
    path = "/api/v1/jobs" if kind == "queued" else f"/api/v1/jobs/{jid}/{kind}"
    response = client.post(path, data={**fields, "job_id": jid} if kind == "queued" else fields)
    assert response.status_code in (200, 201), response.text


def run(client: TestClient, jid: str, job_class: str, seconds: float, at: float = 1_800_000_000.0) -> None:
    report(client, "started", jid, job_class, at)
    report(client, "complete", jid, job_class, at + seconds)


@pytest.fixture
def app_with(settings: Settings, redis_client: redis.Redis) -> Iterator[Callable[..., TestClient]]:
    """Start the app with these settings changed; the ledger's figures are read on every scrape."""
    started: list[Any] = []

    def start(**changes: Any) -> TestClient:
        client = TestClient(create_app(settings.model_copy(update={"metrics_cache_seconds": 0, **changes})))
        started.append(client.__enter__())
        return started[-1]

    yield start
    for client in reversed(started):
        client.__exit__(None, None, None)


def test_reports_runs_and_failures_are_counted(app_with):
    client = app_with()
    report(client, "queued", "a", "Mailer")
    run(client, "a", "Mailer", 1.5)
    report(client, "complete", "a", "Mailer", 1_800_000_001.5)  # a resend: the run counts once
    report(client, "complete", "b", "Mailer", 1_800_000_003.0)  # before its start...
    report(client, "started", "b", "Mailer", 1_800_000_000.0)  # ...which completes the run
    report(client, "failed", "c", "Import", 1_800_000_000.0, error_class="Timeout")
    report(client, "failed", "c", "Import", 1_800_000_060.0, error_class="Timeout")

    found = scrape_until(client, lambda f: value(f, "supervisor_ledger_jobs", status="complete") == 2)

    received = {kind: value(found, "supervisor_reports_received_total", kind=kind) for kind in
                ("queued", "started", "complete", "failed")}  # fmt: skip
    assert received == {"queued": 1, "started": 2, "complete": 3, "failed": 2}
    assert value(found, "supervisor_job_duration_seconds_count", **{"class": "Mailer"}) == 2
    assert value(found, "supervisor_job_duration_seconds_sum", **{"class": "Mailer"}) == 4.5
    assert value(found, "supervisor_job_duration_seconds_bucket", **{"class": "Mailer", "le": "1.0"}) == 0
    assert value(found, "supervisor_job_duration_seconds_bucket", **{"class": "Mailer", "le": "2.5"}) == 1
    assert value(found, "supervisor_job_duration_seconds_bucket", **{"class": "Mailer", "le": "5.0"}) == 2
    assert value(found, "supervisor_job_failures_total", **{"class": "Import"}) == 2
    assert value(found, "supervisor_job_failures_total", **{"class": "Mailer"}) is None
    assert value(found, "supervisor_group_commit_seconds_count") == 8
    assert value(found, "supervisor_ledger_jobs", status="queued") == 1  # c: failed, never started
    assert value(found, "supervisor_ledger_jobs", status="started") == 0
    assert value(found, "supervisor_reports_refused_total", reason="overloaded") == 0
    assert value(found, "supervisor_ingest_queue_limit") == 50_000
    assert value(found, "supervisor_database_up") == 1 and value(found, "supervisor_redis_up") == 1
    assert value(found, "supervisor_ledger_figures_age_seconds") >= 0
    assert not any(name.endswith("_created") for name in names(found))


def test_the_busiest_classes_keep_their_names_and_the_rest_count_as_other(app_with):
    client = app_with(metrics_max_classes=2)
    for n in range(3):
        run(client, f"a{n}", "Alpha", 1)
    run(client, "b0", "Beta", 1)  # two classes known: both named as they come
    run(client, "c0", "Gamma", 1)  # a third: other

    found = scrape_until(client, lambda f: value(f, "supervisor_ledger_jobs", status="complete") == 5)
    counts = {
        dict(labels)["class"]: count
        for (name, labels), count in found.items()
        if name == "supervisor_job_duration_seconds_count"
    }
    assert counts == {"Alpha": 3, "Beta": 1, "other": 1}

    # Gamma becomes busier than Beta in the ledger: the next reading names it, and Beta is other.
    for n in range(1, 4):
        run(client, f"c{n}", "Gamma", 1)
    scrape_until(client, lambda f: value(f, "supervisor_ledger_jobs", status="complete") == 8)
    run(client, "c9", "Gamma", 1)
    run(client, "b9", "Beta", 1)

    found = scrape(client)
    counts = {
        dict(labels)["class"]: count
        for (name, labels), count in found.items()
        if name == "supervisor_job_duration_seconds_count"
    }
    # The last scrape above started a reading in the background (the cache is 0 s), which may read
    # the ledger once c1 has started and name Gamma before c1, c2 or c3 completes: those runs count
    # under Gamma or under other, as the race goes. c9 and b9 ran after a reading had named Gamma.
    assert counts["Alpha"] == 3 and counts["Beta"] == 1
    assert counts["Gamma"] + counts["other"] == 6  # c0-c3, c9 and b9
    assert 1 <= counts["Gamma"] <= 4 and counts["other"] >= 2  # c9 named; c0 (before) and b9 not


def live_process(redis_client: redis.Redis, running: str) -> None:
    """A Sidekiq 7 process that beat just now and runs ``running``."""
    info = {"hostname": "web-1", "pid": 10, "identity": LIVE, "version": "7.3.9", "concurrency": 5}
    redis_client.sadd("processes", LIVE)
    redis_client.hset(LIVE, mapping={"info": orjson.dumps(info), "beat": time.time(), "busy": 1})
    payload = orjson.dumps({"class": "Sync", "jid": running, "args": [1]}).decode()
    work = {"queue": "default", "payload": payload, "run_at": int(time.time())}
    redis_client.hset(f"{LIVE}:work", "t1", orjson.dumps(work))


def test_uncompleted_jobs_by_liveness_and_age(app_with, redis_client):
    live_process(redis_client, "running")
    retry = orjson.dumps({"class": "Sync", "jid": "retrying", "args": [1]})
    redis_client.zadd("retry", {retry: time.time() + 600})
    client = app_with(uncompleted_alert_minutes=5)
    now = time.time()
    for jid, ago, identity in [
        ("running", 30, LIVE),
        ("retrying", 30, GONE),
        ("gone", 30, GONE),
        ("no-identity", 600, None),
        ("gone-long-ago", 7200, GONE),
    ]:
        worker = {"worker_identity": identity} if identity else {}
        report(client, "started", jid, "Sync", now - ago, **worker)

    found = scrape_until(client, lambda f: value(f, "supervisor_ledger_jobs", status="started") == 5)

    liveness = {state: value(found, "supervisor_uncompleted_jobs", liveness=state)
                for state in ("running", "retrying", "orphaned", "unknown")}  # fmt: skip
    assert liveness == {"running": 1, "retrying": 1, "orphaned": 2, "unknown": 1}
    assert value(found, "supervisor_stuck_jobs") == 2  # started more than 5 minutes ago
    assert 7200 <= value(found, "supervisor_oldest_uncompleted_job_age_seconds") < 7200 + 60


def test_sidekiq_figures_carry_sidekiq_prometheus_exporter_names(app_with, redis_client):
    sidekiq_fixtures.load(redis_client, "7.3.10")
    queues = sorted(name.decode() for name in redis_client.smembers("queues"))
    processes = redis_client.smembers("processes")
    client = app_with()

    found = scrape(client)

    def redis_int(command: str, *args: Any) -> int:
        return int(redis_client.execute_command(command, *args) or 0)

    assert value(found, "sidekiq_processed_jobs_total") == redis_int("GET", "stat:processed") > 0
    assert value(found, "sidekiq_failed_jobs_total") == redis_int("GET", "stat:failed")
    assert value(found, "sidekiq_retry_jobs") == redis_int("ZCARD", "retry")
    assert value(found, "sidekiq_scheduled_jobs") == redis_int("ZCARD", "schedule")
    assert value(found, "sidekiq_dead_jobs") == redis_int("ZCARD", "dead")
    assert value(found, "sidekiq_processes") == len(processes)
    assert value(found, "sidekiq_busy_workers") == sum(redis_int("HGET", p, "busy") for p in processes)
    sizes = {name: redis_int("LLEN", f"queue:{name}") for name in queues}
    assert {name: value(found, "sidekiq_queue_enqueued_jobs", name=name) for name in queues} == sizes
    assert value(found, "sidekiq_enqueued_jobs") == sum(sizes.values()) > 0
    for name in queues:
        latency = value(found, "sidekiq_queue_latency_seconds", name=name)
        assert latency > 0 if sizes[name] else latency == 0


def test_metrics_want_the_api_token_when_one_is_set(app_with):
    client = app_with(api_token=f"old,{TOKEN}", username="admin", password="pages")
    refused = client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == 'Bearer realm="sidekiq-supervisor"'
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401

    basic = base64.b64encode(f"prometheus:{TOKEN}".encode()).decode()
    assert value(scrape(client, Authorization=f"Bearer {TOKEN}"), "supervisor_database_up") == 1
    assert value(scrape(client, Authorization=f"Basic {basic}"), "supervisor_database_up") == 1


def test_without_a_token_metrics_are_open_like_the_api_even_with_dashboard_credentials(app_with):
    client = app_with(username="admin", password="pages")
    assert value(scrape(client), "supervisor_database_up") == 1


def test_with_redis_down_metrics_answer_and_say_so(app_with):
    client = app_with(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    run(client, "a", "Mailer", 1)

    found = scrape_until(client, lambda f: value(f, "supervisor_ledger_jobs", status="complete") == 1)

    assert value(found, "supervisor_redis_up") == 0
    assert value(found, "supervisor_database_up") == 1
    assert not any(name.startswith("sidekiq_") for name in names(found))
    assert "supervisor_uncompleted_jobs" not in names(found)  # liveness needs Redis


def test_without_a_redis_url_there_is_no_redis_health_to_report(app_with):
    found = scrape(app_with(redis_url=""))
    assert "supervisor_redis_up" not in names(found)
    assert value(found, "supervisor_database_up") == 1


def test_refused_reports_are_counted_by_reason(app_with):
    client = app_with(ingest_queue_limit=1)
    events = [{"event": "queued", "job_id": f"j{n}", "arguments": [1], "job_class": "W"} for n in range(2)]

    assert client.post("/api/v1/events", json={"events": events}).status_code == 503

    found = scrape(client)
    assert value(found, "supervisor_reports_refused_total", reason="overloaded") == 2
    assert value(found, "supervisor_reports_received_total", kind="queued") == 2
    assert value(found, "supervisor_ingest_queue_limit") == 1


@pytest.mark.parametrize("ledger_url", ["postgres"], indirect=True)
def test_with_the_database_down_or_hung_metrics_answer_200_and_say_so(settings, redis_client):
    url = make_url(settings.database_url)
    with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        changes = {"database_url": proxied, "metrics_cache_seconds": 0, "request_timeout_seconds": 1}
        with TestClient(create_app(settings.model_copy(update=changes))) as client:
            run(client, "a", "Mailer", 1)
            scrape_until(client, lambda f: value(f, "supervisor_ledger_jobs", status="complete") == 1)

            proxy.cut()  # a server that died: connections reset
            found = scrape_until(client, lambda f: value(f, "supervisor_database_up") == 0)
            assert "supervisor_ledger_jobs" not in names(found)
            assert value(found, "supervisor_reports_received_total", kind="complete") == 1
            assert value(found, "supervisor_redis_up") == 1

            proxy.restore()
            scrape_until(client, lambda f: value(f, "supervisor_ledger_jobs", status="complete") == 1)

            proxy.blackhole()  # a partition: the reading hangs, the scrape does not
            found = scrape_until(client, lambda f: value(f, "supervisor_database_up") == 0)
            assert "supervisor_ledger_jobs" not in names(found)
            proxy.restore()
            scrape_until(client, lambda f: value(f, "supervisor_database_up") == 1)
