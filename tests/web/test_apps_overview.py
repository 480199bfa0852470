"""The overview of apps (``/apps``, ``GET /api/v1/apps``): each app's Sidekiq figures and ledger
figures, from its own Redis and ledger; an app whose Redis is down or silent is shown as such,
and never breaks the answer."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from tests.conftest import redis_test_url
from tests.receivers import free_port, silent_server

LIVE = "host-a:101:0123456789ab"  # a Sidekiq process that heartbeats
GONE = "host-b:202:ba9876543210"  # one that stopped: the jobs it started are orphaned


@pytest.fixture
def shop_redis(redis_client: redis.Redis) -> redis.Redis:
    """Shop's Redis: the run's own database index (emptied before and after)."""
    return redis_client


@pytest.fixture
def billing_redis(second_redis_client: redis.Redis) -> redis.Redis:
    """Billing's Redis: the run's second database index (emptied before and after)."""
    return second_redis_client


def write_config(path: Path, apps: dict[str, str]) -> Path:
    """A configuration file of ``apps`` (name: Redis URL), the first the default app."""
    path.write_text("\n".join(f'[apps.{name}]\nredis_url = "{url}"\n' for name, url in apps.items()))
    return path


def app_client(tmp_path: Path, apps: dict[str, str], **settings: Any) -> TestClient:
    config = write_config(tmp_path / "apps.toml", apps)
    return TestClient(
        create_app(
            Settings(
                database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
                redis_url=redis_test_url(),
                config=str(config),
                **settings,
            )
        )
    )


def job(jid: str, queue: str, enqueued_at: float) -> str:
    return json.dumps(
        {"class": "HardJob", "args": [1], "jid": jid, "queue": queue, "enqueued_at": enqueued_at}
    )


def seed_sidekiq(
    client: redis.Redis,
    *,
    processed: int,
    failed: int,
    waits: dict[str, list[float]],
    retries: int,
    dead: int,
    busy: int,
) -> None:
    """Sidekiq's keys as a live Sidekiq 7 writes them: today's counters (and yesterday's, which
    must not count), queues whose jobs have waited ``waits`` seconds, the retry and dead sets, and
    one live process with ``busy`` threads working."""
    now = time.time()
    today = datetime.fromtimestamp(now, UTC).date()
    client.set(f"stat:processed:{today:%Y-%m-%d}", processed)
    client.set(f"stat:failed:{today:%Y-%m-%d}", failed)
    client.set("stat:processed:2001-01-01", 999)
    client.set("stat:processed", processed + 1000)
    client.set("stat:failed", failed + 100)
    for queue, ages in waits.items():
        client.sadd("queues", queue)
        # LPUSH puts the newest at the head: the oldest (longest wait) goes in first.
        for number, age in enumerate(sorted(ages, reverse=True)):
            client.lpush(f"queue:{queue}", job(f"{queue}{number:020d}", queue, now - age))
    for number in range(retries):
        client.zadd("retry", {job(f"retry{number:019d}", "default", now): now + 60 + number})
    for number in range(dead):
        client.zadd("dead", {job(f"dead{number:020d}", "default", now): now - number})
    client.sadd("processes", LIVE)
    info = {"hostname": "host-a", "pid": 101, "identity": LIVE, "concurrency": 5, "queues": list(waits)}
    client.hset(LIVE, mapping={"info": json.dumps(info), "busy": busy, "beat": now, "quiet": "false"})


def seed_ledger(
    client: TestClient, app: str, *, queued: int, running: int, orphaned: int, done: int, batch: str = "a"
) -> None:
    """Jobs of ``app``'s ledger: some only queued, some started by the live process (after its
    last heartbeat: running), some by the process that is gone (orphaned), some complete."""
    events: list[dict[str, Any]] = []
    number = 0

    def report(kind: str, jid: str, worker: str | None = None) -> None:
        event: dict[str, Any] = {"event": kind, "job_id": jid, "arguments": [jid], "job_class": "HardJob"}
        if worker is not None:
            event["worker"] = {"identity": worker}
        events.append(event)

    for count, worker in ((queued, None), (running, LIVE), (orphaned, GONE)):
        for _ in range(count):
            number += 1
            report("queued", f"{app}-{batch}{number}")
            if worker is not None:
                report("started", f"{app}-{batch}{number}", worker)
    for _ in range(done):
        number += 1
        for kind in ("queued", "started", "complete"):
            report(kind, f"{app}-{batch}{number}", LIVE if kind == "started" else None)
    response = client.post(f"/apps/{app}/api/v1/events", json={"events": events})
    assert response.status_code == 200, response.text


def by_name(response: Any) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {entry["name"]: entry for entry in response.json()["data"]}


SHOP_SIDEKIQ = {"processed": 120, "failed": 7, "retries": 3, "dead": 2, "busy": 4}
BILLING_SIDEKIQ = {"processed": 15, "failed": 1, "retries": 0, "dead": 5, "busy": 1}


def test_each_app_shows_its_own_sidekiq_and_ledger_figures(
    tmp_path, shop_redis, billing_redis, second_redis_url
):
    seed_sidekiq(shop_redis, waits={"default": [30, 5], "mailers": [300]}, **SHOP_SIDEKIQ)
    seed_sidekiq(billing_redis, waits={"default": [12]}, **BILLING_SIDEKIQ)
    with app_client(tmp_path, {"shop": redis_test_url(), "billing": second_redis_url}) as client:
        seed_ledger(client, "shop", queued=2, running=1, orphaned=3, done=4)
        seed_ledger(client, "billing", queued=0, running=2, orphaned=1, done=1)

        apps = by_name(client.get("/api/v1/apps"))
        page = client.get("/apps")

    assert list(apps) == ["shop", "billing"]  # the configuration's order, the default app first
    shop, billing = apps["shop"], apps["billing"]
    assert shop["url"] == "/apps/shop/" and shop["sidekiq_url"] == "/apps/shop/sidekiq"
    for entry, figures in ((shop, SHOP_SIDEKIQ), (billing, BILLING_SIDEKIQ)):
        assert entry["redis"] == "ok" and entry["redis_error"] is None
        assert entry["ledger"] == "ok"
        assert entry["processed_today"] == figures["processed"]
        assert entry["failed_today"] == figures["failed"]
        assert (entry["retries"], entry["dead"], entry["busy"]) == (
            figures["retries"],
            figures["dead"],
            figures["busy"],
        )
        assert entry["processes"] == 1
        assert datetime.fromisoformat(entry["checked_at"]).tzinfo is not None
    assert (shop["enqueued"], billing["enqueued"]) == (3, 1)
    # The oldest waiting job of any queue, not only the default queue's.
    assert shop["latency_queue"] == "mailers" and shop["latency_seconds"] == pytest.approx(300, abs=10)
    assert billing["latency_queue"] == "default" and billing["latency_seconds"] == pytest.approx(12, abs=10)
    assert (shop["queued"], shop["uncompleted"], shop["orphaned"]) == (2, 4, 3)
    assert (billing["queued"], billing["uncompleted"], billing["orphaned"]) == (0, 3, 1)

    assert page.status_code == 200
    assert page.text.count('data-redis="ok"') == 2
    assert 'href="/apps/shop/"' in page.text and 'href="/apps/billing/sidekiq"' in page.text
    assert '<td class="num" data-figure="processed_today">120</td>' in page.text
    assert '<td class="num" data-figure="orphaned">3</td>' in page.text


def test_an_unreachable_redis_is_shown_and_the_other_apps_figures_stay_right(tmp_path, shop_redis):
    seed_sidekiq(shop_redis, waits={"default": [20]}, **SHOP_SIDEKIQ)
    closed = f"redis://127.0.0.1:{free_port()}/0"
    with app_client(tmp_path, {"shop": redis_test_url(), "billing": closed}) as client:
        seed_ledger(client, "shop", queued=1, running=0, orphaned=2, done=0)
        seed_ledger(client, "billing", queued=1, running=1, orphaned=1, done=1)

        apps = by_name(client.get("/api/v1/apps"))
        page = client.get("/apps")
        prefixed = by_name(client.get("/apps/billing/api/v1/apps"))

    shop, billing = apps["shop"], apps["billing"]
    assert (shop["redis"], shop["processed_today"], shop["orphaned"]) == ("ok", 120, 2)
    assert billing["redis"] == "unreachable"
    assert "127.0.0.1" in billing["redis_error"]
    sidekiq_figures = ("processed_today", "failed_today", "enqueued", "retries", "dead", "busy")
    for figure in (*sidekiq_figures, "latency_seconds", "latency_queue"):
        assert billing[figure] is None, figure
    # The ledger's figures are still there; which of its jobs are orphaned needs Redis.
    ledger = (billing["ledger"], billing["queued"], billing["uncompleted"], billing["orphaned"])
    assert ledger == ("ok", 1, 2, None)

    assert page.status_code == 200
    assert 'data-app="billing" data-redis="unreachable"' in page.text
    assert "Redis unreachable" in page.text
    assert 'data-app="shop" data-redis="ok"' in page.text
    # Under /apps/NAME, that app alone.
    assert list(prefixed) == ["billing"] and prefixed["billing"]["url"] == "/apps/billing/"


def test_each_answer_starts_the_next_reading_of_a_stale_ledger(tmp_path, shop_redis):
    # A cache of 0 s: every reading is stale once an answer has gone out.
    with app_client(tmp_path, {"shop": redis_test_url()}, metrics_cache_seconds=0) as client:
        seed_ledger(client, "shop", queued=0, running=0, orphaned=1, done=0)
        first = by_name(client.get("/api/v1/apps"))["shop"]
        seed_ledger(client, "shop", queued=0, running=0, orphaned=2, done=0, batch="b")
        later = by_name(client.get("/api/v1/apps"))["shop"]
        limit = time.monotonic() + 10
        while later["uncompleted"] != 3 and time.monotonic() < limit:
            time.sleep(0.05)
            later = by_name(client.get("/api/v1/apps"))["shop"]
        page = client.get("/apps")
    assert (first["uncompleted"], first["orphaned"]) == (1, 1)
    assert (later["uncompleted"], later["orphaned"]) == (3, 3)
    assert later["ledger_read_at"] > first["ledger_read_at"]
    assert page.status_code == 200


def test_an_app_without_redis_says_not_configured(tmp_path):
    with app_client(tmp_path, {"shop": redis_test_url(), "quiet": ""}) as client:
        apps = by_name(client.get("/api/v1/apps"))
        page = client.get("/apps/")
    assert apps["quiet"]["redis"] == "not configured"
    assert apps["quiet"]["processed_today"] is None and apps["quiet"]["ledger"] == "ok"
    assert page.status_code == 200 and "not configured" in page.text


# The hung Redis holds its read until the client's socket timeout (5 s), and the service's
# shutdown waits for the ledger reading behind it.
@pytest.mark.slow
def test_a_silent_redis_times_out_within_the_deadline_and_the_others_are_shown(tmp_path, shop_redis):
    seed_sidekiq(shop_redis, waits={"default": [20]}, **SHOP_SIDEKIQ)
    with silent_server() as port:
        apps_config = {"shop": redis_test_url(), "billing": f"redis://127.0.0.1:{port}/0"}
        # A request deadline of 3 s: the page (not exempt from it) answering 200, not 503, shows
        # that the overview gave up on billing in time (its own deadline is half that), with
        # room to spare on a loaded machine.
        with app_client(tmp_path, apps_config, request_timeout_seconds=3) as client:
            seed_ledger(client, "billing", queued=0, running=0, orphaned=2, done=0)

            apps = by_name(client.get("/api/v1/apps"))
            page = client.get("/apps")
            again = by_name(client.get("/api/v1/apps"))

            # Billing's ledger reading waits on its Redis too (for the liveness), then shows.
            limit = time.monotonic() + 30
            while again["billing"]["ledger"] != "ok" and time.monotonic() < limit:
                time.sleep(0.2)
                again = by_name(client.get("/api/v1/apps"))

    assert apps["billing"]["redis"] == "timeout"
    assert apps["billing"]["redis_error"] == "no answer within 1.5 s"
    assert apps["billing"]["processed_today"] is None
    assert (apps["shop"]["redis"], apps["shop"]["processed_today"], apps["shop"]["busy"]) == ("ok", 120, 4)
    assert page.status_code == 200
    assert 'data-app="billing" data-redis="timeout"' in page.text
    assert "Redis timed out" in page.text
    assert again["billing"]["redis"] == "timeout"
    assert (again["billing"]["ledger"], again["billing"]["uncompleted"]) == ("ok", 2)
    assert again["billing"]["orphaned"] is None


def test_the_list_of_every_app_wants_a_token_that_opens_every_app(tmp_path):
    config = write_config(tmp_path / "apps.toml", {"shop": redis_test_url(), "billing": ""})
    config.write_text(config.read_text() + 'api_tokens = ["billing-t0ken"]\n')
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        redis_url=redis_test_url(),
        config=str(config),
        api_token="global-t0ken",
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/apps").status_code == 401
        billing_token = {"Authorization": "Bearer billing-t0ken"}
        assert client.get("/api/v1/apps", headers=billing_token).status_code == 401
        every = client.get("/api/v1/apps", headers={"Authorization": "Bearer global-t0ken"})
        own = client.get("/apps/billing/api/v1/apps", headers=billing_token)
    assert [entry["name"] for entry in every.json()["data"]] == ["shop", "billing"]
    assert [entry["name"] for entry in own.json()["data"]] == ["billing"]
