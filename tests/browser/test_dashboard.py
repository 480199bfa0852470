"""The dashboard in a real browser: figures, escaping, auth, CSRF, restarts, phone width, screenshots."""

from __future__ import annotations

import time

import httpx2
import orjson
import pytest

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    assert_fits_and_photograph,
    dashboard_service,
    screenshot_folder,
)
from tests.web.pages.dataset import XSS_ARGUMENT, XSS_CLASS, XSS_ERROR, XSS_JID, XSS_WORKER, Dataset

PAGES = {
    "overview": "/",
    "jobs": "/jobs?status=all",
    "job": f"/jobs/{XSS_JID}",
    "durations": "/durations",
    "restart": "/restart",
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
    assert page.get_by_text("Count matching jobs").count() == 1


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
    for width_name, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        for scheme in ("light", "dark"):
            context = browser.new_context(
                viewport=viewport,
                color_scheme=scheme,
                http_credentials={"username": "ops", "password": "correct horse"},
            )
            try:
                page = context.new_page()
                page.goto(service.url + PAGES[name])
                assert_fits_and_photograph(page, name, width_name, scheme)
            finally:
                context.close()


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
# The widest piece of each cell's text that must stay on one line (between the "::" breaks).
WIDEST_PIECE = """
(cells) => cells.map((cell) => {
  const canvas = document.createElement("canvas").getContext("2d");
  canvas.font = getComputedStyle(cell).font;
  const widest = Math.max(...cell.innerText.split("::").map((piece) => canvas.measureText(piece).width));
  return {text: cell.innerText, widest, width: cell.clientWidth};
})
"""


def test_class_names_wrap_only_between_their_parts_at_desktop_width(page, tmp_path):
    with dashboard_service(tmp_path, None) as service:
        events = [
            {"event": "started", "job_id": f"long-{n}", "job_class": name, "arguments": [{"note": "x" * 300}]}
            for n, name in enumerate(LONG_CLASSES)
        ]
        assert httpx2.post(
            f"{service.url}/api/v1/events", json={"events": events}, trust_env=False
        ).is_success
        page.goto(service.url + "/jobs?status=all")
        cells = page.eval_on_selector_all("td.name", WIDEST_PIECE)

    assert sorted(cell["text"].replace("\n", "") for cell in cells) == sorted(LONG_CLASSES)
    for cell in cells:
        # Each part between "::" fits the column on one line: no part is broken mid-word.
        assert cell["widest"] <= cell["width"] + 1, cell
