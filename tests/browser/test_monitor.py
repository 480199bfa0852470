"""The /sidekiq pages in a real browser: every page at desktop and phone widths in both themes
(photographed), clicks that change Redis, the realtime graph, and job data that never runs."""

from __future__ import annotations

import base64
import json
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.browser.conftest import (
    DESKTOP,
    PASSWORD,
    PHONE,
    USER,
    assert_fits_and_photograph,
    dashboard_service,
)
from tests.conftest import redis_test_url
from tests.sidekiq_fixtures import load

# Real Chromium on the service run as a process: not in the fast lane.
pytestmark = pytest.mark.browser

expect = pytest.importorskip("playwright.sync_api").expect
XSS = '<script>alert("monitor")</script>'
# A failed job with a long message and a backtrace, at a score fixed when the module loads, so its
# page has a known URL: Sidekiq's ``/retries/<score>-<jid>``.
RETRY_SCORE = float(int(time.time()) + 2 * 3600)
RETRY_JID = "e" * 24
MESSAGE = "The billing service answered 503 Service Unavailable; " * 8 + "giving up for now."
BACKTRACE = [f"/app/app/services/billing/client.rb:{40 + n}:in `charge'" for n in range(12)]
PAGES = {
    "sidekiq-dashboard": "/sidekiq",
    "sidekiq-busy": "/sidekiq/busy",
    "sidekiq-queues": "/sidekiq/queues",
    "sidekiq-queue": "/sidekiq/queues/reports",
    "sidekiq-retries": "/sidekiq/retries",
    "sidekiq-scheduled": "/sidekiq/scheduled",
    "sidekiq-dead": "/sidekiq/morgue",
    "sidekiq-metrics": "/sidekiq/metrics?period=8h",
    "sidekiq-metrics-class": "/sidekiq/metrics/FastJob?period=2h",
    "sidekiq-retry": f"/sidekiq/retries/{RETRY_SCORE!r}-{RETRY_JID}",
    "sidekiq-profiles": "/sidekiq/profiles",
}


@pytest.fixture(scope="module")
def monitor_service(tmp_path_factory) -> Iterator[str]:
    """A ``serve`` process on the tests' Redis (each test loads the data it needs); its base URL."""
    with dashboard_service(tmp_path_factory.mktemp("monitor"), None) as service:
        yield service.url


@pytest.fixture
def sidekiq_data() -> Iterator[redis.Redis]:
    """The tests' Redis holding the Sidekiq 7.3.10 dump (kept from expiring), plus a job whose class,
    arguments and error are script injections in each set and in a queue."""
    client = redis.Redis.from_url(redis_test_url())
    client.flushdb()
    dump = load(client, "7.3.10")
    for key in dump["keys"]:
        client.persist(key)
    hostile = {"class": XSS, "args": [XSS], "jid": "f" * 24, "queue": "reports", "retry_count": 2,
               "error_class": XSS, "error_message": XSS, "created_at": time.time(),
               "enqueued_at": time.time()}  # fmt: skip
    client.lpush("queue:reports", json.dumps(hostile))
    for key in ("retry", "schedule", "dead"):
        client.zadd(key, {json.dumps(hostile): time.time() + (3600 if key != "dead" else -60)})
    packed = base64.b64encode(zlib.compress(json.dumps(BACKTRACE).encode())).decode()
    failed = {"class": "Billing::ChargeJob", "args": [4242, {"currency": "EUR"}], "jid": RETRY_JID,
              "queue": "billing", "retry": True, "retry_count": 3, "error_class": "Billing::Unavailable",
              "error_message": MESSAGE, "error_backtrace": packed, "backtrace": True,
              "created_at": time.time() - 7200, "enqueued_at": time.time() - 600,
              "failed_at": time.time() - 7000, "retried_at": time.time() - 600, "tenant": "acme"}  # fmt: skip
    client.zadd("retry", {json.dumps(failed): RETRY_SCORE})
    write_recent_metrics(client)
    yield client
    client.flushdb()
    client.close()


def write_recent_metrics(client: redis.Redis) -> None:
    """The last two hours of FastJob and SlowReport in Sidekiq 7's layout (the dump's are days old):
    per-minute counters ``j|YYYYMMDD|H:M`` and run-time histograms ``<Class>-DD-HH:M``."""
    now = datetime.now(UTC)
    for back in range(120):
        minute = now - timedelta(minutes=back)
        counters = f"j|{minute:%Y%m%d}|{minute.hour}:{minute.minute}"
        classes = (("FastJob", 40 + back % 7, back % 3, 1, 24), ("SlowReport", 3, back % 2, 13, 2900))
        for job_class, runs, failures, bucket, each_ms in classes:
            client.hset(counters, mapping={f"{job_class}|p": runs, f"{job_class}|f": failures,
                                           f"{job_class}|ms": (runs - failures) * each_ms})  # fmt: skip
            histogram = f"{job_class}-{minute:%d}-{minute:%H}:{minute.minute}"
            client.bitfield(histogram).incrby("u16", f"#{bucket}", runs - failures - 1).incrby(
                "u16", f"#{bucket + 1}", 1
            ).execute()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_page_fits_a_phone_in_both_themes_and_is_photographed(
    browser, monitor_service, sidekiq_data, name
):
    for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        for scheme in ("light", "dark"):
            credentials = {"username": USER, "password": PASSWORD}
            context = browser.new_context(
                viewport=viewport, color_scheme=scheme, http_credentials=credentials
            )
            dialogs: list[str] = []
            try:
                page = context.new_page()
                page.on(
                    "dialog", lambda dialog, seen=dialogs: (seen.append(dialog.message), dialog.dismiss())
                )
                response = page.goto(monitor_service + PAGES[name])
                assert response is not None and response.status == 200
                assert page.locator("nav.monitor-tabs a[aria-current=page]").count() == 1
                assert_fits_and_photograph(page, name, width_name, scheme)
            finally:
                context.close()
            assert dialogs == [], f"a script from job data ran on {name}: {dialogs}"


def test_script_in_job_data_shows_as_text(page, monitor_service, sidekiq_data):
    page.goto(monitor_service + "/sidekiq/retries")
    row = page.locator(f'tr[data-jid="{"f" * 24}"]')
    assert row.locator(".name").first.inner_text() == XSS
    assert XSS in row.locator(".error-text").inner_text()
    page.goto(monitor_service + "/sidekiq/queues/reports")
    assert page.get_by_text(XSS).first.is_visible()
    page.wait_for_timeout(200)  # the page fixture asserts that no dialog opened


def test_a_retry_now_click_and_delete_clicks_change_redis(page, monitor_service, sidekiq_data):
    first = sidekiq_data.zrange("retry", 0, 0)[0]
    jid = json.loads(first)["jid"]
    page.goto(monitor_service + "/sidekiq/retries")
    page.locator(f'tr[data-jid="{jid}"] button[data-row="retry"]').click()
    assert page.locator("#notice").inner_text() == "1 job retried now (pushed to their queues)."
    assert sidekiq_data.zscore("retry", first) is None
    queue = json.loads(first)["queue"]
    assert jid in {json.loads(m)["jid"] for m in sidekiq_data.lrange(f"queue:{queue}", 0, -1)}

    dead_before = sidekiq_data.zcard("dead")
    page.goto(monitor_service + "/sidekiq/morgue")
    page.locator("#entries tbody tr").first.locator('button[data-row="delete"]').click()
    assert page.locator("#notice").inner_text() == "1 job deleted."
    assert sidekiq_data.zcard("dead") == dead_before - 1

    size = sidekiq_data.llen("queue:reports")
    page.goto(monitor_service + "/sidekiq/queues/reports")
    page.locator('#queue-jobs button[data-action="delete"]').first.click()
    assert sidekiq_data.llen("queue:reports") == size - 1


def test_check_all_then_a_bulk_action(page, monitor_service, sidekiq_data):
    scheduled = sidekiq_data.zcard("schedule")
    page.goto(monitor_service + "/sidekiq/scheduled")
    page.check("#check-all")
    assert page.locator('input[name="sel"]:checked').count() == scheduled
    page.click('button[data-bulk="enqueue"]')
    assert page.locator("#notice").inner_text() == f"{scheduled} jobs added to their queues."
    assert sidekiq_data.zcard("schedule") == 0


def test_the_realtime_graph_plots_what_is_processed_between_polls(page, monitor_service, sidekiq_data):
    page.goto(monitor_service + "/sidekiq")
    page.select_option("#poll-seconds", "2")
    # Locator waits (the page's CSP forbids the eval that wait_for_function would need).
    expect(page.locator("#realtime-status")).to_contain_text("Updated")
    # At once (MULTI), as Sidekiq counts a failure: a poll between two separate increments
    # would show the processed jobs in one interval and the failures in the next.
    with sidekiq_data.pipeline(transaction=True) as both:
        both.incrby("stat:processed", 17).incrby("stat:failed", 3).execute()
    expect(page.locator("[data-rate=processed]")).to_have_text("17", timeout=8000)
    assert page.locator("[data-rate=failed]").inner_text() == "3"
    points = page.locator('#realtime-chart [data-series="processed"]').get_attribute("points")
    assert len(points.split()) >= 1
    assert page.locator('[data-stat="processed"]').inner_text() == f"{31 + 17:,}"


def test_a_jobs_own_page_shows_the_whole_error_and_its_buttons_act(page, monitor_service, sidekiq_data):
    page.goto(monitor_service + "/sidekiq/retries")
    page.locator(f'tr[data-jid="{RETRY_JID}"] .name a').click()
    assert page.url.endswith(PAGES["sidekiq-retry"])
    assert page.locator("#error-message").inner_text() == MESSAGE
    assert page.locator("#backtrace").inner_text().splitlines() == BACKTRACE
    assert '"tenant"' in page.locator("#job-extras").inner_text()

    page.locator('.entry-actions button[data-action="retry"]').click()
    assert page.locator("#notice").inner_text() == "1 job retried now (pushed to their queues)."
    assert RETRY_JID in {json.loads(m)["jid"] for m in sidekiq_data.lrange("queue:billing", 0, -1)}
    assert not [m for m in sidekiq_data.zrange("retry", 0, -1) if RETRY_JID in m.decode()]


def test_live_poll_on_a_list_page_starts_off_is_remembered_and_reloads(page, monitor_service, sidekiq_data):
    page.goto(monitor_service + "/sidekiq/morgue")
    assert not page.locator("#live").is_checked()  # as Sidekiq's Live Poll: still until asked
    page.goto(monitor_service + "/sidekiq/retries?poll=true")
    assert page.locator("#live").is_checked()
    size = sidekiq_data.zcard("retry")
    failed = {"class": "LateJob", "args": [], "jid": "d" * 24, "queue": "default", "retry_count": 0}
    sidekiq_data.zadd("retry", {json.dumps(failed): time.time() + 600})
    expect(page.locator("#set-total")).to_have_text(f"{size + 1:,}", timeout=15_000)
    # Remembered per browser: the next list page polls too, until it is turned off.
    page.goto(monitor_service + "/sidekiq/scheduled")
    assert page.locator("#live").is_checked()
    page.locator("#live").uncheck()
    page.goto(monitor_service + "/sidekiq/morgue")
    assert not page.locator("#live").is_checked()


def test_a_job_list_shows_as_many_rows_per_screen_as_sidekiqs(browser, monitor_service, sidekiq_data):
    for n in range(30):
        failed = {"class": "Billing::ChargeJob", "args": [n, {"currency": "EUR"}], "jid": f"{n:024x}",
                  "queue": "billing", "retry_count": n % 4, "error_class": "Net::ReadTimeout",
                  "error_message": "Net::ReadTimeout with #<TCPSocket:(closed)> waiting for billing " * 2,
                  "failed_at": time.time() - 600}  # fmt: skip
        sidekiq_data.zadd("retry", {json.dumps(failed): time.time() + 60 * (n + 1)})
    context = browser.new_context(
        viewport={"width": 1280, "height": 1000}, http_credentials={"username": USER, "password": PASSWORD}
    )
    try:
        page = context.new_page()
        page.goto(monitor_service + "/sidekiq/retries")
        boxes = [row.bounding_box() for row in page.locator("#entries tbody tr").all()]
        whole = [box for box in boxes if box is not None and box["y"] + box["height"] <= 1000]
        # Sidekiq 8.1's Retries page shows 13 whole rows at 1280 x 1000.
        assert len(whole) >= 13, f"{len(whole)} whole rows at 1280 x 1000"
    finally:
        context.close()
