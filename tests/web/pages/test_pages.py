"""The dashboard pages over both databases: the figures they show, escaping, lists, job pages."""

from __future__ import annotations

import re
import time
from collections import Counter
from html import unescape
from urllib.parse import unquote_plus

import orjson
from markupsafe import escape

from tests.web.pages.dataset import (
    CLASSES,
    XSS_ARGUMENT,
    XSS_CLASS,
    XSS_ERROR,
    XSS_JID,
    XSS_WORKER,
    nearest_rank,
)


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert found, element_id
    return unescape(found.group(1)).strip()


def data_value(html: str, attribute: str, key: str) -> str:
    found = re.search(rf'{attribute}="{re.escape(key)}">([^<]*)<', html)
    assert found, (attribute, key)
    return unescape(found.group(1)).strip()


def test_the_overview_counts_statuses_events_and_lists_long_uncompleted_jobs(client, dataset):
    html = client.get("/").text
    counts = dataset.counts()
    for status in ("queued", "started", "complete"):
        assert data_value(html, "data-count", status) == f"{counts[status]:,}"
    for kind, total in dataset.kind_totals().items():
        assert data_value(html, "data-total", kind) == f"{total:,}"
    stuck = re.search(r'<table id="stuck"[^>]*>(.*?)</table>', html, re.S).group(1)
    assert sorted(re.findall(r'href="/jobs/([^"]+)"', stuck)) == sorted(dataset.stuck)
    assert "<svg" in html and "polyline" in html


def test_the_threshold_parameter_changes_which_jobs_count_as_stuck(client, dataset):
    html = client.get("/?threshold=45").text
    stuck = re.search(r'<table id="stuck"[^>]*>(.*?)</table>', html, re.S).group(1)
    assert re.findall(r'href="/jobs/([^"]+)"', stuck) == [dataset.stuck[2]]
    assert "None. Every started job" in client.get("/?threshold=600").text


def test_the_slowest_classes_show_the_p95_of_their_runs(client, dataset):
    html = client.get("/").text
    for job_class in ("InvoiceMailer", "ImageResizer", "ReportBuilder"):
        shown = data_value(html, "data-p95", job_class)
        assert shown.endswith((" s", " ms", "min 00 s")) and shown != "—"
    p95 = dataset.p95("ReportBuilder")
    minutes, seconds = divmod(int(p95), 60)
    expected = f"{minutes} min {seconds:02d} s" if p95 >= 60 else f"{p95:.3g} s"
    assert data_value(html, "data-p95", "ReportBuilder") == expected


def test_the_overview_counts_every_status_exactly(client, dataset):
    html = client.get("/").text
    for status, count in dataset.counts().items():
        assert data_value(html, "data-count", status) == f"{count:,}"


def test_every_piece_of_job_data_is_escaped(client, dataset):
    pages = [client.get(path).text for path in ("/", "/jobs", f"/jobs/{XSS_JID}", "/durations", "/restart")]
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html
    job_page = pages[2]
    shown_arguments = orjson.dumps([XSS_ARGUMENT]).decode()
    for text in (XSS_CLASS, shown_arguments, XSS_WORKER, XSS_ERROR):
        assert str(escape(text)) in job_page


def test_pages_carry_a_strict_content_security_policy_and_the_api_does_not_change(client):
    headers = client.get("/").headers
    policy = headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "frame-ancestors 'none'" in policy
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"
    assert "content-security-policy" not in client.get("/api/v1/stats").headers
    assert client.get("/static/app.js").headers["content-security-policy"] == policy


def test_job_lists_filter_and_page_with_a_cursor(client, dataset):
    first = client.get("/jobs?status=completed").text
    jids = re.findall(r'class="jid" href="/jobs/([^"]+)"', first)
    assert len(jids) == 50
    next_url = unescape(re.search(r'href="([^"]+)" rel="next"', first).group(1))
    second = client.get(next_url).text
    more = re.findall(r'class="jid" href="/jobs/([^"]+)"', second)
    assert len(jids) + len(more) == dataset.counts()["complete"] and not set(jids) & set(more)
    assert 'rel="next"' not in second
    html = client.get("/jobs", params={"q": "tenant-9", "status": "uncompleted"}).text
    assert sorted(re.findall(r'class="jid" href="/jobs/([^"]+)"', html)) == sorted(dataset.stuck)
    html = client.get("/jobs", params={"job_class": "ReportBuilder", "status": "completed"}).text
    assert len(re.findall(r'class="jid"', html)) == 12


def test_the_count_shows_at_once_without_an_arguments_filter_and_on_request_with_one(client, dataset):
    html = client.get("/jobs?status=completed").text
    assert text_of(html, "exact-count") == f"{dataset.counts()['complete']:,}"
    assert "Count matching jobs" not in html
    html = client.get("/jobs", params={"status": "completed", "job_class": "ReportBuilder"}).text
    assert text_of(html, "exact-count") == "12"
    html = client.get("/jobs?status=all&q=example.com").text
    assert 'id="exact-count"' not in html and "Count matching jobs" in html
    html = client.get("/jobs?status=all&q=example.com&count=1").text
    assert text_of(html, "exact-count") == f"{sum(count for count, _, _ in CLASSES.values()):,}"


def test_a_job_page_shows_its_timeline_durations_and_a_note_when_redis_is_down(client, dataset):
    jid = f"{1:024x}"
    html = client.get(f"/jobs/{jid}").text
    timeline = re.search(r'<ol class="timeline" id="timeline">(.*?)</ol>', html, re.S).group(1)
    assert [unescape(k) for k in re.findall(r'class="event event-(\w+)"', timeline)] == [
        "queued", "started", "complete"
    ]  # fmt: skip
    assert "web-1:1:abc" in timeline
    run = dataset.runs["InvoiceMailer"][0]
    assert data_value(html, "data-duration", "started") == f"{run * 1000:.3g} ms"
    evil = client.get(f"/jobs/{XSS_JID}").text
    assert 'class="event event-failed"' in evil and "RuntimeError" in evil


def test_an_unknown_jid_is_a_404_page(client):
    response = client.get("/jobs/nope")
    assert response.status_code == 404 and "No such job" in response.text


def test_each_durations_window_counts_the_jobs_completed_in_it(client, dataset):
    def counted(window: str) -> dict[str, int]:
        html = client.get("/durations", params={"window": window}).text
        assert f'data-window="{window}" aria-current="true"' in html or (
            f'aria-current="true" data-window="{window}"' in html
        )
        table = re.search(r'id="summary-started">(.*?)</table>', html, re.S).group(1)
        rows = re.findall(
            r'job_class=([^"&]+)[^"]*">.*?</a></td>\s*<td class="num">([\d,]+)</td>', table, re.S
        )
        return {unquote_plus(unescape(name)): int(count.replace(",", "")) for name, count in rows}

    def completed_since(since: float) -> dict[str, int]:
        done = Counter(
            e["job_class"] for e in dataset.events if e["event"] == "complete" and e["at"] >= since
        )
        return dict(done)

    everything = completed_since(0)
    for window in ("24h", "7d", "all"):  # every job of the dataset completed in the last 3 hours
        assert counted(window) == everything, window
    # This hour and the one before (the page's hour may have turned since the dataset was made).
    before, shown, after = time.time(), counted("1h"), time.time()
    starts = {moment // 3600 * 3600 - 3600 for moment in (before, after)}
    assert shown in [completed_since(start) for start in starts]
    assert sum(shown.values()) < sum(everything.values())
    refused = client.get("/durations", params={"window": "1y"})
    assert refused.status_code == 422 and "window" in refused.text


def test_durations_summarise_both_questions_per_class(client, dataset):
    html = client.get("/durations").text
    table = re.search(r'id="summary-started">(.*?)</table>', html, re.S).group(1)
    row = re.search(r"InvoiceMailer</span></a></td>(.*?)</tr>", table, re.S).group(1)
    cells = [unescape(c).strip() for c in re.findall(r'<td class="num">([^<]*)</td>', row)]
    runs = sorted(dataset.runs["InvoiceMailer"])  # all under a second: shown in ms
    assert cells[0] == str(len(runs))
    assert cells[1] == f"{sum(runs) / len(runs) * 1000:.3g} ms"
    assert cells[5] == f"{runs[-1] * 1000:.3g} ms"
    # Percentiles come from the roll-ups' buckets: never below the true value, at most 19% above
    # (and never above the maximum); shown to three digits.
    for cell, percentile in zip(cells[2:5], (50, 95, 99), strict=True):
        exact = nearest_rank(runs, percentile)
        shown = float(cell.removesuffix(" ms")) / 1000
        assert exact * 0.995 <= shown <= min(exact * 1.19, runs[-1]) * 1.005, (cell, exact)
    assert "<rect" in client.get("/durations?job_class=ReportBuilder&from=queued").text
