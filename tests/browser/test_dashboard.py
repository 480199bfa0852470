"""The dashboard in a real browser: figures, escaping, auth, CSRF, restarts, phone width, screenshots."""

from __future__ import annotations

import time

import httpx2
import orjson
import pytest

from tests.browser.conftest import (
    DESKTOP,
    assert_fits_and_photograph,
    dashboard_service,
    each_look,
    screenshot_folder,
)
from tests.web.pages.dataset import XSS_ARGUMENT, XSS_CLASS, XSS_ERROR, XSS_JID, XSS_WORKER, Dataset

# Real Chromium on the service run as a process: not in the fast lane.
pytestmark = pytest.mark.browser

PAGES = {
    "overview": "/",
    "jobs": "/jobs?status=all",
    "job": f"/jobs/{XSS_JID}",
    "durations": "/durations",
    "restart": "/restart",
    "recoveries": "/recoveries",
    "alerts": "/alerts",
}


def test_the_overview_shows_the_figures_of_the_data_sent(page, service, dataset: Dataset):
    page.goto(service.url + "/")
    counts = dataset.counts()
    for status in ("queued", "started", "complete"):
        assert page.locator(f'[data-count="{status}"]').inner_text() == f"{counts[status]:,}"
    for kind, total in dataset.kind_totals().items():
        assert page.locator(f'[data-total="{kind}"]').inner_text() == f"{total:,}"
    stuck = page.locator("#stuck a.jid").all_inner_texts()
    assert sorted(stuck) == sorted(dataset.stuck)
    page.locator("#stuck a.jid").first.click()
    assert page.locator("h1").inner_text().startswith(stuck[0])


def test_script_in_job_data_is_shown_as_text_and_never_runs(page, service):
    page.goto(f"{service.url}/jobs/{XSS_JID}")
    for text in (XSS_CLASS, XSS_WORKER, XSS_ERROR.split("><")[0]):
        assert page.get_by_text(text, exact=False).first.is_visible()
    assert page.locator("pre.arguments").inner_text() == orjson.dumps([XSS_ARGUMENT]).decode()
    page.goto(f"{service.url}/jobs?status=completed&job_class={XSS_CLASS}")
    assert page.locator("#jobs td.name").first.inner_text() == XSS_CLASS
    page.goto(f"{service.url}/durations")
    page.goto(f"{service.url}/")
    page.wait_for_timeout(300)  # the page fixture asserts no dialog opened


def test_the_job_list_pages_with_a_cursor(page, service, dataset):
    page.goto(service.url + "/jobs?status=completed")
    first = page.locator("#jobs a.jid").all_inner_texts()
    page.locator('a[rel="next"]').click()
    page.wait_for_url("**cursor=*")
    second = page.locator("#jobs a.jid").all_inner_texts()
    assert len(first) == 50 and len(first) + len(second) == dataset.counts()["complete"]
    # Without an arguments filter the exact count shows at once, on every page.
    assert page.locator("#exact-count").inner_text() == f"{dataset.counts()['complete']:,}"
    assert page.get_by_text("Count matching jobs").count() == 0


def test_pages_refuse_a_browser_without_the_right_credentials(browser, service):
    for credentials in (None, {"username": "ops", "password": "wrong"}):
        context = browser.new_context(http_credentials=credentials)
        try:
            # A headless browser cannot prompt, so ask through the context's request API.
            assert context.request.get(service.url + "/").status == 401
            assert context.request.get(service.url + "/jobs").status == 401
            assert context.request.get(service.url + "/api/v1/stats").status == 200
        finally:
            context.close()


@pytest.mark.parametrize("name", sorted(PAGES))
def test_each_page_fits_a_phone_and_is_photographed(browser, service, name):
    for page, width_name, scheme in each_look(browser):
        page.goto(service.url + PAGES[name])
        assert_fits_and_photograph(page, name, width_name, scheme)


def test_the_theme_toggle_switches_and_is_remembered(page, service):
    page.goto(service.url + "/")
    before = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.click("#theme-toggle")
    after = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert before != after
    page.reload()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == after


def test_restart_preview_then_confirm_and_a_forged_token_is_refused(browser, tmp_path, redis_client):
    data = Dataset(now=time.time())
    for index in range(2):
        data.add("started", f"orphan{index}", "ReportBuilder", data.now - 3600, ["ORD-7", index])
    with dashboard_service(tmp_path, data) as service:
        context = browser.new_context(
            viewport=DESKTOP, http_credentials={"username": "ops", "password": "correct horse"}
        )
        page = context.new_page()
        page.goto(service.url + "/restart?q=ORD-7")
        assert sorted(page.locator("#to-restart a.jid").all_inner_texts()) == ["orphan0", "orphan1"]
        page.evaluate("document.querySelector('input[name=csrf_token]').value = 'forged'")
        response_status = []
        page.on(
            "response", lambda r: response_status.append(r.status) if r.request.method == "POST" else None
        )
        page.click("#confirm")
        assert response_status == [403]
        page.goto(service.url + "/restart?q=ORD-7")
        page.click("#confirm")
        assert page.locator("#restarted-count").inner_text() == "2"
        pushed = [orjson.loads(p)["args"] for p in redis_client.lrange("queue:default", 0, -1)]
        assert sorted(pushed) == [["ORD-7", 0], ["ORD-7", 1]]
        page.screenshot(path=str(screenshot_folder() / "restart-outcome-desktop-light.png"), full_page=True)
        context.close()


def test_redis_down_shows_a_clear_restart_page(browser, tmp_path):
    from tests.live_service import running_service

    env = {"REDIS_URL": "redis://127.0.0.1:1/0"}
    with running_service(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, **env) as service:
        context = browser.new_context(viewport=DESKTOP)
        page = context.new_page()
        page.goto(service.url + "/restart")
        assert "Sidekiq's Redis is unavailable" in page.locator("#problem").inner_text()
        context.close()


def test_the_api_docs_render_without_the_internet(page, service):
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))

    page.goto(service.url + "/docs")
    page.locator(".opblock-summary-path", has_text="/api/v1/jobs/restart").first.wait_for(timeout=20_000)

    assert [url for url in requested if not url.startswith(service.url)] == []


LONG_CLASSES = [
    "Billing::Invoices::MonthlyStatementReminderDeliveryJob",
    "Warehouse::Inventory::StockLevelReconciliationWorker",
    "NotificationsFanOutForEveryRegisteredDeviceWorker",
]
# Each name's text as the browser laid it out, a string per line (read from each character's
# box), its title, and whether any of it is cut off.
RENDERED_LINES = """
(names) => names.map((name) => {
  const range = document.createRange();
  const walker = document.createTreeWalker(name, NodeFilter.SHOW_TEXT);
  const lines = [];
  let top = null;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (let i = 0; i < node.data.length; i++) {
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      const box = range.getClientRects()[0];
      if (!box) continue;
      if (top === null || box.top > top + box.height / 2) {
        lines.push("");
        top = box.top;
      }
      lines[lines.length - 1] += node.data[i];
    }
  }
  return {lines, title: name.title, cut: name.scrollWidth > name.clientWidth};
})
"""
TAG_STYLE = """
() => {
  const tag = document.createElement("span");
  tag.className = "tag";
  tag.textContent = "restart";
  document.body.append(tag);
  const style = getComputedStyle(tag);
  return {border: style.borderTopStyle, cursor: style.cursor, background: style.backgroundColor};
}
"""


def test_class_names_wrap_only_after_their_double_colons_at_desktop_width(page, tmp_path):
    an_hour_ago = time.time() - 3600
    events = []
    for n, name in enumerate(LONG_CLASSES):
        common = {"job_class": name, "queue": "default", "arguments": [{"note": "x" * 300}]}
        for jid, kinds in (
            (f"done-{n}", ("queued", "started", "complete")),
            (f"stuck-{n}", ("queued", "started")),
        ):
            events += [
                {"event": kind, "job_id": jid, "at": an_hour_ago + step, **common}
                for step, kind in enumerate(kinds)
            ]
    with dashboard_service(tmp_path, None) as service:
        assert httpx2.post(
            f"{service.url}/api/v1/events", json={"events": events}, trust_env=False
        ).is_success
        shown = {}
        for path in ("/jobs?status=all", "/", "/durations", "/jobs/stuck-0", "/jobs/stuck-2"):
            page.goto(service.url + path)
            shown[path] = page.eval_on_selector_all(".class-name", RENDERED_LINES)
            if path == "/":
                sideways = page.eval_on_selector_all(
                    ".table-wrap", "(w) => w.map((e) => e.scrollWidth - e.clientWidth)"
                )
        tag = page.evaluate(TAG_STYLE)

    assert len(shown["/jobs?status=all"]) == 2 * len(LONG_CLASSES)
    assert len(shown["/"]) >= len(LONG_CLASSES)  # the slowest classes and the long-uncompleted jobs
    for path, cells in shown.items():
        assert cells, path
        for name in cells:
            lines = name["lines"]
            assert "".join(lines) == name["title"] and name["title"] in LONG_CLASSES, (path, name)
            # A line ends only after a "::": no name is broken mid-word.
            assert all(line.endswith("::") for line in lines[:-1]), (path, lines)
            # Whole, except in the overview's half-width panels, where a part longer than the
            # panel allows is cut with an ellipsis (the title, checked above, has it whole).
            assert not name["cut"] or (path == "/" and name["title"] == LONG_CLASSES[2]), (path, name)
    assert sideways and max(sideways) <= 0  # the overview's panels never scroll sideways
    # The "restart" tag beside a restarted job's jid is a label: no border, nothing to press.
    assert tag["border"] == "none" and tag["cursor"] != "pointer", tag


RECOVERED_QUEUE = "browser-recovered"


@pytest.fixture
def recovering_service(tmp_path, redis_client):
    """A service whose recovery loop pushes the jobs of a process that never heartbeats, into a
    queue of their own, in the tests' Redis (``redis_client`` empties it after)."""
    settings = {
        "SUPERVISOR_AUTO_RECOVER": "true",
        "SUPERVISOR_RECOVER_INTERVAL_SECONDS": "1",
        "SUPERVISOR_RECOVER_QUEUE": RECOVERED_QUEUE,
    }
    with dashboard_service(tmp_path, None, **settings) as service:
        yield service


def test_the_recoveries_page_counts_what_recovery_did_per_class_and_is_photographed(
    browser, recovering_service
):
    started_at = time.time() - 600
    lost = {f"lost{n:020d}": ("Billing::InvoiceJob" if n % 3 else "ReportJob") for n in range(6)}
    worker = {"identity": "web-9:4242:deadbeef0001", "hostname": "web-9", "pid": 4242}
    events = [
        {"event": event, "job_id": jid, "job_class": job_class, "queue": "default", "arguments": f"[{n}]",
         "at": started_at + (event == "started"), **({"worker": worker} if event == "started" else {})}
        for n, (jid, job_class) in enumerate(lost.items()) for event in ("queued", "started")
    ]  # fmt: skip
    with httpx2.Client(base_url=recovering_service.url, timeout=30, trust_env=False) as client:
        assert client.post("/api/v1/events", json={"events": events}).status_code == 200
    for page, width_name, scheme in each_look(browser):
        page.goto(recovering_service.url + "/recoveries")
        for _ in range(30):  # a pass a second: the page shows them once one has run
            if page.locator("#recoveries tbody tr").count() == len(lost):
                break
            page.wait_for_timeout(500)
            page.reload()
        per_class = [row.split() for row in page.locator("#recoveries-per-class tbody tr").all_inner_texts()]
        assert per_class == [["Billing::InvoiceJob", "4", "0"], ["ReportJob", "2", "0"]]
        assert page.locator("#recoveries tbody tr").count() == len(lost)
        assert "run by this process" in page.locator('[data-loop="last"]').inner_text()
        assert_fits_and_photograph(page, "recoveries-with-data", width_name, scheme)
