"""Job data is shown as text; jobs the ledger knows link to it, found in one query per page; the main
app serves the monitor behind its own page security."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import event

from tests.sidekiq_fixtures import load
from tests.web.monitor.conftest import csrf_of

SCRIPT = '<script>alert("x")</script>'
PAGES = ["/sidekiq", "/sidekiq/busy", "/sidekiq/queues", "/sidekiq/queues/default", "/sidekiq/retries",
         "/sidekiq/scheduled", "/sidekiq/morgue", "/sidekiq/metrics"]  # fmt: skip


def hostile_job(jid: str) -> str:
    return json.dumps({
        "class": SCRIPT, "args": [SCRIPT, {"html": "<img src=x onerror=alert(1)>"}], "jid": jid,
        "queue": "default", "error_class": SCRIPT, "error_message": SCRIPT, "retry_count": 1,
        "tags": [SCRIPT], "created_at": time.time(), "enqueued_at": time.time(),
    })  # fmt: skip


def test_script_in_job_data_is_shown_as_text_on_every_page(loaded, redis_client):
    now = time.time()
    redis_client.lpush("queue:default", hostile_job("a" * 24))
    redis_client.sadd("queues", SCRIPT)  # a queue name Sidekiq would never open
    redis_client.lpush(f"queue:{SCRIPT}", hostile_job("b" * 24))
    for key in ("retry", "schedule", "dead"):
        redis_client.zadd(key, {hostile_job("c" * 24): now})
    process = next(iter(loaded.value("processes")))
    work = json.dumps({"queue": "default", "payload": hostile_job("d" * 24), "run_at": int(now)})
    redis_client.hset(f"{process}:work", "hostile", work)
    redis_client.hset(f"{process}:workers", "hostile", work)
    redis_client.hset(next(k for k in loaded.dump["keys"] if k.startswith("j|")), f"{SCRIPT}|p", 1)
    for page in PAGES:
        html = loaded.client.get(page).text
        assert "<script>alert" not in html and "<img src=x" not in html, page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in loaded.client.get("/sidekiq/retries").text


@pytest.fixture
def main(client, redis_client):
    """The whole service (ledger on SQLite and PostgreSQL) on a Redis holding the Sidekiq 8 dump."""
    dump = load(redis_client, "8.1.7")
    for key in dump["keys"]:
        redis_client.persist(key)
    return client, dump


def test_jobs_the_ledger_knows_link_to_their_page_found_in_one_query(main):
    client, dump = main
    retry_jids = [json.loads(m)["jid"] for m, _ in dump["keys"]["retry"]["value"]]
    known = retry_jids[0]
    body = {"event": "queued", "job_id": known, "job_class": "FlakyJob", "queue": "default",
            "arguments": ["ORD"], "at": time.time()}  # fmt: skip
    assert client.post("/api/v1/events", json={"events": [body]}).status_code == 200
    engine = client.app.state.apps.default.engine
    statements: list[str] = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(engine, "before_cursor_execute", listener)
    try:
        html = client.get("/sidekiq/retries").text
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert f'href="/jobs/{known}"' in html
    assert all(f'href="/jobs/{jid}"' not in html for jid in retry_jids[1:])
    assert all(jid in html for jid in retry_jids)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1, statements
    assert client.get(f"/jobs/{known}").status_code == 200


def test_the_main_app_links_the_monitor_and_guards_its_forms(main):
    client, _dump = main
    assert 'href="/sidekiq"' in client.get("/").text
    page = client.get("/sidekiq")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    assert ">Overview<" in page.text  # the ledger's navigation, since they are one app
    assert client.post("/sidekiq/retries", data={"all": "delete"}).status_code == 403
    token = csrf_of(client.get("/sidekiq/retries").text)
    assert client.post("/sidekiq/retries", data={"all": "delete", "csrf_token": token}).status_code == 200
    assert client.get("/sidekiq/stats").json()["sidekiq"]["retries"] == 0


def test_the_monitor_app_alone_wants_the_page_credentials(redis_client):
    from fastapi.testclient import TestClient

    from sidekiq_supervisor.settings import Settings
    from sidekiq_supervisor.web.monitor import create_monitor_app
    from tests.conftest import redis_test_url

    settings = Settings(redis_url=redis_test_url(), database_url="sqlite://", username="ops", password="pw")
    with TestClient(create_monitor_app(settings)) as alone:
        assert alone.get("/sidekiq").status_code == 401
        page = alone.get("/sidekiq", auth=("ops", "pw"))
        assert page.status_code == 200 and ">Overview<" not in page.text
        assert alone.get("/static/monitor.js", auth=("ops", "pw")).status_code == 200
        assert alone.get("/", auth=("ops", "pw"), follow_redirects=False).headers["location"] == "/sidekiq"
