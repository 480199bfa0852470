"""The restart preview and its confirmation, against the tests' Redis; and with Redis down."""

from __future__ import annotations

import re
import time

import orjson
import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.services.dashboard import Dashboard
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.restart import RestartFailed
from sidekiq_supervisor.web.app import create_app
from tests.store.plans import statements
from tests.web.pages.conftest import csrf_of

LIVE = "web-1:42:0123456789ab"


def started(client, jid: str, ago: float, worker: dict | None = None, argument: str = "ORD-7") -> None:
    body = {
        "arguments": [argument],
        "job_class": "ReportBuilder",
        "queue": "reports",
        "at": time.time() - ago,
    }
    if worker:
        body["worker"] = worker
    assert client.post(f"/api/v1/jobs/{jid}/started", json=body).status_code == 201


def live_process(redis_client, runs: str) -> None:
    """A Sidekiq process with a fresh heartbeat whose thread runs ``runs``."""
    redis_client.sadd("processes", LIVE)
    redis_client.hset(LIVE, mapping={"beat": time.time(), "info": orjson.dumps({"version": "7.3.10"})})
    work = {"queue": "reports", "payload": orjson.dumps({"jid": runs}).decode(), "run_at": time.time()}
    redis_client.hset(f"{LIVE}:work", "tid1", orjson.dumps(work))


def jids_in(html: str, table: str) -> list[str]:
    found = re.search(rf'<table id="{table}">(.*?)</table>', html, re.S)
    return [] if found is None else re.findall(r'class="jid" href="/jobs/([^"]+)"', found.group(1))


def test_the_preview_lists_what_would_restart_and_what_stays_then_the_confirm_does_it(client, redis_client):
    started(client, "orphan1", 3600)
    started(client, "running1", 3600, {"identity": LIVE})
    started(client, "other1", 3600, argument="elsewhere")
    live_process(redis_client, "running1")
    preview = client.get("/restart", params={"q": "ORD-7"}).text
    assert jids_in(preview, "to-restart") == ["orphan1"]
    assert jids_in(preview, "skipped") == ["running1"]
    assert "is running it" in preview
    assert client.get("/jobs/orphan1").status_code == 200  # the preview changed nothing

    outcome = client.post("/restart", data={"csrf_token": csrf_of(preview), "q": "ORD-7", "jids": "orphan1"})
    assert outcome.status_code == 200
    restarted = jids_in(outcome.text, "restarted")
    assert restarted[0] == "orphan1" and len(restarted) == 2
    new_jid = restarted[1]
    assert orjson.loads(redis_client.lpop("queue:reports"))["jid"] == new_jid
    original = client.get("/jobs/orphan1").text
    assert f'href="/jobs/{new_jid}"' in original and "Restarted: this job was queued again" in original
    assert 'href="/jobs/orphan1"' in client.get(f"/jobs/{new_jid}").text


def test_the_confirm_takes_only_the_previewed_jobs(client, redis_client):
    started(client, "orphan1", 3600)
    preview = client.get("/restart").text
    started(client, "orphan2", 3600)  # appeared after the preview
    outcome = client.post("/restart", data={"csrf_token": csrf_of(preview), "jids": "orphan1"}).text
    assert jids_in(outcome, "restarted")[0] == "orphan1"
    assert "orphan2" not in outcome
    assert '<span class="badge badge-started">started</span>' in client.get("/jobs/orphan2").text


def test_the_job_page_says_where_a_job_is_in_sidekiq(client, redis_client):
    started(client, "running1", 60, {"identity": LIVE})
    live_process(redis_client, "running1")
    html = client.get("/jobs/running1").text
    assert "process web-1:42:0123456789ab is running it" in html


@pytest.fixture
def without_redis(settings):
    settings = settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(settings)) as client:
        yield client


def test_redis_down_gives_a_clear_page_not_an_error(without_redis):
    started(without_redis, "orphan1", 3600)
    preview = without_redis.get("/restart")
    assert preview.status_code == 503 and "Sidekiq's Redis is unavailable" in preview.text
    job = without_redis.get("/jobs/orphan1")
    assert job.status_code == 200 and "Sidekiq's state is not available" in job.text


def test_no_redis_configured_is_said_plainly(client, settings):
    # A manager without Sidekiq's Redis: the job page says so, and a restart fails saying why.
    started(client, "orphan1", 3600)
    engine = client.app.state.apps.default.engine
    dashboard = Dashboard(JobManager.on(engine, None, settings))
    view = dashboard.job_view("orphan1")
    assert view.whereabouts.state is None and "no Sidekiq Redis is configured" in view.whereabouts.text
    with pytest.raises(RestartFailed, match="no Sidekiq Redis is configured"):
        dashboard.restart_preview(None, None)


def test_a_preview_of_many_jobs_shows_the_newest_page_and_says_more_match(client, redis_client):
    from sidekiq_supervisor.services import dashboard

    count = dashboard.PREVIEW_LIMIT + 3
    events = [
        {
            "event": "started",
            "job_id": f"lost-{n:05d}",
            "job_class": "ReportBuilder",
            "arguments": [n],
            "at": n + 1.0,
        }
        for n in range(count)
    ]
    assert client.post("/api/v1/events", json={"events": events}).json()["stored"] == count

    with statements(client.app.state.apps.default.engine) as seen:
        preview = client.get("/restart").text

    listed = jids_in(preview, "to-restart")
    assert len(listed) == dashboard.PREVIEW_LIMIT
    # One read of the ledger's jobs, the look past the last one shown included.
    assert len([sql for sql, _ in seen if sql.startswith("SELECT jobs.id")]) == 1
    assert listed[0] == f"lost-{count - 1:05d}"  # newest first
    assert 'id="more"' in preview
    assert redis_client.keys("*") == []


@pytest.mark.slow  # waits out the 2 s it takes a process for gone
def test_the_confirm_can_wait_for_a_process_that_may_still_be_alive(ledger_url, redis_client):
    from sidekiq_supervisor.settings import Settings
    from tests.conftest import redis_test_url

    settings = Settings(database_url=ledger_url, redis_url=redis_test_url(), process_stale_seconds=2)
    with TestClient(create_app(settings)) as client:
        started(client, "quiet1", 3600, {"identity": LIVE})
        live_process(redis_client, "quiet1")  # it beat just now, then went quiet (killed)
        preview = client.get("/restart").text
        assert jids_in(preview, "skipped") == ["quiet1"]
        assert "taken for gone at 2 s" in preview

        outcome = client.post(
            "/restart", data={"csrf_token": csrf_of(preview), "jids": "quiet1", "wait": "on"}
        )

    assert outcome.status_code == 200
    assert jids_in(outcome.text, "restarted")[0] == "quiet1"
    assert redis_client.llen("queue:reports") == 1
