"""Alerts over HTTP and on the command line: the Alerts page and its test button (a CSRF-checked
POST), ``GET /api/v1/alerts`` and its test route behind the API token, ``sidekiq-supervisor alerts``;
and ingest that never waits for a notification URL that hangs."""

from __future__ import annotations

import json
import time

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from sidekiq_supervisor.cli.main import app as cli
from sidekiq_supervisor.domain.model import EventKind, Report, micros_from_seconds
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import make_engine, write_transaction
from sidekiq_supervisor.store.writer import write_reports
from sidekiq_supervisor.web.app import create_app
from tests.receivers import HttpReceiver
from tests.web.pages.conftest import csrf_of

TOKEN = "t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def receiver():
    server = HttpReceiver().start()
    yield server
    server.stop()


def stuck_job(ledger_url: str, jid: str = "stuck") -> None:
    """A job started two hours ago and never completed: the uncompleted rule's alert."""
    engine = make_engine(ledger_url)
    at = micros_from_seconds(time.time() - 7200)
    with write_transaction(engine) as connection:
        write_reports(connection, [Report(jid, EventKind.STARTED, at, "ExportJob", "default", "[1]")], at)
    engine.dispose()


def alerting(settings: Settings, receiver: HttpReceiver, **more) -> Settings:
    return settings.model_copy(
        update={
            "notify": f"json://{receiver.url}/hook",
            "api_token": TOKEN,
            "alert_interval_seconds": 0.2,
            "alert_uncompleted_minutes": 30,
            "alert_resolve_after_seconds": 0,
            "notify_name": "test-instance",
            **more,
        }
    )


def wait_for(read, predicate, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"waited {timeout} s; last {value}"
        time.sleep(0.05)


def alerts_document(client: TestClient) -> dict:
    response = client.get("/api/v1/alerts", headers=AUTH)
    assert response.status_code == 200, response.text
    return response.json()


def test_the_page_the_api_and_the_cli_show_the_alert_and_its_delivery(
    ledger_url, settings, receiver, monkeypatch
):
    stuck_job(ledger_url)
    with TestClient(create_app(alerting(settings, receiver))) as client:
        receiver.wait_for(lambda r: len(r.received) == 1)
        # The pass records the delivery, then its own health: wait for both.
        document = wait_for(
            lambda: alerts_document(client),
            lambda d: d["messages"][0]["status"] == "sent" and d["loop"]["led_last_pass"] is True,
        )
        page = client.get("/alerts").text

    (alert,) = document["open"]
    assert (alert["condition"], alert["state"], alert["count"], alert["sample"]) == (
        "uncompleted",
        "open",
        1,
        ["stuck"],
    )
    assert document["loop"]["enabled"] is True and document["loop"]["led_last_pass"] is True
    assert document["targets"] == [f"json://{receiver.url}/hook"]
    (message,) = document["messages"]
    assert message["title"] == "[test-instance] FIRING: Jobs uncompleted too long"
    (delivery,) = message["deliveries"]
    assert (delivery["status"], delivery["attempts"], delivery["error"]) == ("sent", 1, None)
    assert json.loads(receiver.received[0].body)["title"] == message["title"]

    assert '<tr data-alert="1" data-condition="uncompleted">' in page
    assert "1 job uncompleted for more than 30 min (ExportJob 1)" in page
    assert f"<code>json://{receiver.url}/hook</code>" in page
    assert 'data-status="sent"' in page

    monkeypatch.setenv("DATABASE_URL", ledger_url)
    monkeypatch.setenv("REDIS_URL", settings.redis_url)
    monkeypatch.setenv("SUPERVISOR_NOTIFY", f"json://{receiver.url}/hook")
    result = CliRunner().invoke(cli, ["alerts", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert [a["id"] for a in printed["open"]] == [1] and printed["messages"] == document["messages"]
    text = CliRunner().invoke(cli, ["alerts"]).stdout
    assert "FIRING  Jobs uncompleted too long: 1 job uncompleted for more than 30 min" in text
    assert f"json://{receiver.url}/hook  sent, 1 tries" in text


def test_the_test_button_sends_a_test_notification_and_wants_the_form_token(settings, receiver):
    quiet = alerting(settings, receiver, alert_uncompleted_minutes=0)
    with TestClient(create_app(quiet)) as client:
        page = client.get("/alerts").text
        assert 'id="send-test"' in page

        forged = client.post("/alerts/test", data={"csrf_token": "forged"})
        cross_site = client.post(
            "/alerts/test", data={"csrf_token": csrf_of(page)}, headers={"Origin": "https://evil.example"}
        )
        assert (forged.status_code, cross_site.status_code) == (403, 403)
        assert receiver.received == []

        sent = client.post("/alerts/test", data={"csrf_token": csrf_of(page)}, follow_redirects=False)
        assert (sent.status_code, sent.headers["location"]) == (303, "/alerts?tested=1")
        receiver.wait_for(lambda r: len(r.received) == 1)
        shown = wait_for(
            lambda: client.get("/alerts?tested=1").text, lambda text: 'data-status="sent"' in text
        )

    body = json.loads(receiver.received[0].body)
    assert (body["title"], body["type"]) == ("[test-instance] Test notification", "info")
    assert "Test notification queued (message 1)" in shown


def test_the_api_queues_a_test_behind_the_token_and_says_when_there_is_no_url(settings, receiver):
    with TestClient(create_app(alerting(settings, receiver, alert_uncompleted_minutes=0))) as client:
        assert client.post("/api/v1/alerts/test").status_code == 401
        queued = client.post("/api/v1/alerts/test", headers=AUTH)
        assert (queued.status_code, queued.json()) == (202, {"message_id": 1})
        receiver.wait_for(lambda r: len(r.received) == 1)

    with TestClient(create_app(settings.model_copy(update={"api_token": TOKEN}))) as client:
        refused = client.post("/api/v1/alerts/test", headers=AUTH)
        document = alerts_document(client)
    assert refused.status_code == 409
    assert refused.json()["error"] == "the alert loop is off (SUPERVISOR_ALERTS=false): nothing would send it"
    assert document["loop"]["enabled"] is False and document["targets"] == []


def test_ingest_goes_on_while_a_notification_url_hangs_and_the_message_arrives_when_it_answers(
    ledger_url, settings, receiver
):
    stuck_job(ledger_url)
    receiver.hold()  # it takes the request and does not answer
    # Apprise waits 4 s for an answer by default (rto): long enough here for the hang to last.
    hanging = alerting(
        settings, receiver, notify=f"json://{receiver.url}/hook?rto=60", notify_timeout_seconds=60
    )
    with TestClient(create_app(hanging)) as client:
        receiver.wait_for(lambda r: r.waiting == 1)  # the alert loop is inside a delivery now

        for n in range(20):
            form = {"arguments": "[]", "job_class": "W", "queue": "q"}
            response = client.post(f"/api/v1/jobs/j{n}/started", data=form, headers=AUTH)
            assert response.status_code == 201, response.text
        assert client.get("/api/v1/jobs/j19", headers=AUTH).json()["status"] == "started"
        assert receiver.received == []  # still held: ingest did not wait for it

        receiver.release()
        receiver.wait_for(lambda r: len(r.received) == 1)
        document = wait_for(lambda: alerts_document(client), lambda d: d["messages"][0]["status"] == "sent")
    assert document["messages"][0]["deliveries"][0]["attempts"] == 1  # the very try that hung


def test_settings_split_the_urls_and_refuse_one_apprise_cannot_use_without_showing_its_secret():
    urls = "json://a.example/x, mailtos://u:pw@smtp.example?to=a@x.org,b@x.org\n  slack://T1/B2/C3"
    assert Settings(notify=urls).notify_urls == (
        "json://a.example/x",
        "mailtos://u:pw@smtp.example?to=a@x.org,b@x.org",
        "slack://T1/B2/C3",
    )
    assert Settings(notify=urls).alerts_enabled and not Settings().alerts_enabled
    assert Settings(alerts=True).alerts_enabled and not Settings(notify=urls, alerts=False).alerts_enabled
    with pytest.raises(ValueError, match=r"nope://user:\*\*\*@host is not a notification URL") as refused:
        Settings(notify="json://ok.example nope://user:s3cret@host")
    assert "s3cret" not in refused.value.errors()[0]["msg"]
