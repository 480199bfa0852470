"""The /sidekiq pages on real Sidekiq 7 and 8 dumps show exactly what the dump holds."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from sidekiq_supervisor.settings import Settings
from tests.sidekiq_fixtures import identity, running_jids
from tests.web.monitor.conftest import data_values, jid_of, monitor_client


def rows(html: str, table_id: str) -> list[str]:
    found = re.search(rf'<table[^>]*id="{table_id}"[^>]*>(.*?)</table>', html, re.S)
    assert found, table_id
    return re.findall(r"<tr[^>]*>.*?</tr>", found.group(1).split("<tbody>", 1)[1], re.S)


def human_bytes(figure: str) -> float:
    """Redis's ``used_memory_human`` ("2.46M", "812.50K", "980B") in bytes."""
    found = re.fullmatch(r"([0-9.]+)([BKMGT]?)", figure)
    assert found, figure
    return float(found.group(1)) * 1024 ** "BKMGT".index(found.group(2) or "B")


def test_the_dashboard_shows_the_summary_history_and_redis(loaded, redis_client):
    # The server's memory moves with any client of it (other test runs on this Redis): the page
    # must show a figure near those taken around its own read.
    memory_before = redis_client.info()["used_memory_human"]
    html = loaded.client.get("/sidekiq?days=7").text
    memory_after = redis_client.info()["used_memory_human"]
    expected = loaded.expected_stats()
    assert data_values(html, "data-stat") | {} == {
        **{key: f"{value:,}" for key, value in expected.items()},
        "default_latency": data_values(html, "data-stat")["default_latency"],
    }
    tabs = data_values(html, "data-tab")
    assert tabs == {k: f"{expected[k]:,}" for k in ("busy", "enqueued", "retries", "scheduled", "dead")}
    captured = datetime.fromtimestamp(loaded.dump["captured_at"], UTC).date()
    week = {(captured - timedelta(days=back)).isoformat() for back in range(7)}
    daily = {
        kind: sum(int(e["value"]) for k, e in loaded.dump["keys"].items()
                  if k.startswith(f"stat:{kind}:") and k.rsplit(":", 1)[1] in week)
        for kind in ("processed", "failed")
    }  # fmt: skip
    assert data_values(html, "data-history") == {k: f"{v:,}" for k, v in daily.items()}
    assert daily["processed"] > 0
    info = redis_client.info()
    shown = data_values(html, "data-redis")
    assert shown["version"] == info["redis_version"]
    around = sorted(human_bytes(figure) for figure in (memory_before, memory_after))
    assert around[0] * 0.9 <= human_bytes(shown["memory"]) <= around[1] * 1.1, (shown, around)
    assert html.count("<polyline") == 4  # two history lines, two realtime lines (drawn by the script)
    assert '<svg class="chart" id="realtime-chart" data-points="60"' in html  # what monitor.js looks for


def test_the_history_period_changes_the_chart(loaded):
    week = loaded.client.get("/sidekiq?days=7").text
    quarter = loaded.client.get("/sidekiq?days=90").text
    half_year = loaded.client.get("/sidekiq?days=180").text  # Sidekiq's longest period
    # The history's line is the last one (the realtime chart's comes first, empty until polled).
    points = [len(re.findall(r'series-processed" fill="none" points="([^"]*)"', page)[-1].split())
              for page in (week, quarter, half_year)]  # fmt: skip
    assert points == [7, 90, 180]
    assert loaded.client.get("/sidekiq?days=181").status_code == 422
    assert loaded.client.get("/sidekiq?days=0").status_code == 422


def test_the_stats_json_that_the_realtime_graph_polls_has_sidekiqs_shape(loaded):
    document = loaded.client.get("/sidekiq/stats").json()
    assert set(document) == {"sidekiq", "redis", "server_utc_time"}
    figures = document["sidekiq"]
    assert {k: figures[k] for k in loaded.expected_stats()} == loaded.expected_stats()
    assert figures["processes"] == 1
    assert set(figures) == {*loaded.expected_stats(), "processes", "default_latency"}
    redis_keys = {"redis_version", "uptime_in_days", "connected_clients", "used_memory_human",
                  "used_memory_peak_human"}  # fmt: skip
    # Sidekiq 8 adds the store's name and version; the line is learnt from the live process.
    store = {"store_name", "store_version"} if loaded.version.startswith("8") else set()
    assert set(document["redis"]) == redis_keys | store
    assert re.fullmatch(r"\d\d:\d\d:\d\d UTC", document["server_utc_time"])


def test_stats_queues_lists_each_queue_size_largest_first(loaded):
    sizes = loaded.client.get("/sidekiq/stats/queues").json()
    expected = {name: len(loaded.value(f"queue:{name}")) for name in loaded.value("queues")}
    assert sizes == expected
    assert list(sizes.values()) == sorted(expected.values(), reverse=True)
    moved = loaded.client.get("/sidekiq/dashboard/stats", follow_redirects=False)
    assert (moved.status_code, moved.headers["location"]) == (302, "/sidekiq/stats")


def test_busy_lists_the_process_and_the_jobs_it_runs(loaded):
    html = loaded.client.get("/sidekiq/busy").text
    process = loaded.value(identity(loaded.dump))
    info = json.loads(process["info"])
    (row,) = rows(html, "processes")
    assert f'data-identity="{identity(loaded.dump)}"' in row
    assert f"{info['hostname']}:{info['pid']}" in row and info["tag"] in row
    assert data_values(html, "data-busy")["busy"] == process["busy"]
    concurrency = int(process.get("concurrency") or info["concurrency"])
    assert data_values(html, "data-busy")["threads"] == str(concurrency)
    assert data_values(html, "data-busy")["rss"] == f"{int(process['rss']) / 1024:.1f} MB"
    assert ">Quiet<" in row and ">Stop<" in row
    work = rows(html, "work")
    assert {re.search(r'class="jid"[^>]*>([0-9a-f]{24})<', r).group(1) for r in work} == running_jids(
        loaded.dump
    )


def test_queues_show_size_and_latency_and_each_queue_its_jobs(loaded):
    html = loaded.client.get("/sidekiq/queues").text
    sizes = dict(re.findall(r'data-queue="([^"]+)">.*?data-size>([^<]+)<', html, re.S))
    assert sizes == {name: str(len(loaded.value(f"queue:{name}"))) for name in loaded.value("queues")}
    for name in loaded.value("queues"):
        page = loaded.client.get(f"/sidekiq/queues/{name}").text
        shown = re.findall(r'class="jid"[^>]*>([0-9a-f]{24})<', page)
        assert shown == [jid_of(member) for member in loaded.value(f"queue:{name}")]  # newest (head) first
        oldest = loaded.client.get(f"/sidekiq/queues/{name}?order=oldest").text
        assert re.findall(r'class="jid"[^>]*>([0-9a-f]{24})<', oldest) == shown[::-1]


SETS = [("/retries", "retry", False), ("/scheduled", "schedule", False), ("/morgue", "dead", True)]


@pytest.mark.parametrize(("path", "key", "newest_first"), SETS)
def test_each_set_in_sidekiqs_order_sortable_and_searchable(loaded, path, key, newest_first):
    by_score = [jid_of(m) for m in loaded.members(key)]
    default = by_score[::-1] if newest_first else by_score
    jids_in = lambda html: re.findall(r'<tr data-jid="([^"]+)"', html)  # noqa: E731
    assert jids_in(loaded.client.get(f"/sidekiq{path}").text) == default
    flipped = "asc" if newest_first else "desc"
    assert jids_in(loaded.client.get(f"/sidekiq{path}?sort={flipped}").text) == default[::-1]
    first = json.loads(loaded.members(key)[0])
    needle = json.dumps(first["args"][0])
    matching = [jid_of(m) for m in loaded.members(key) if needle in m]
    found = jids_in(loaded.client.get(f"/sidekiq{path}", params={"substr": needle, "sort": "asc"}).text)
    assert found == matching and 0 < len(found) < len(by_score) + 1


def test_retries_and_dead_show_the_error_and_retry_count(loaded):
    html = loaded.client.get("/sidekiq/retries").text
    for member in loaded.members("retry"):
        job = json.loads(member)
        assert job["error_class"] in html and job["error_message"] in html
    assert f"{json.loads(loaded.members('retry')[0])['retry_count']} retries" in html
    dead = loaded.client.get("/sidekiq/morgue").text
    assert all(json.loads(m)["error_message"] in dead for m in loaded.members("dead"))


def test_metrics_per_class_from_the_last_hour(loaded):
    minute_keys = [k for k in loaded.dump["keys"] if re.fullmatch(r"j\|\d+\|\d+:\d\d", k)]
    counts: dict[str, dict[str, int]] = {}
    for key in minute_keys:
        for field, value in loaded.value(key).items():
            job_class, metric = field.rsplit("|", 1)
            counts.setdefault(job_class, {"p": 0, "f": 0, "ms": 0})[metric] += int(value)
    html = loaded.client.get("/sidekiq/metrics?period=1h").text
    shown = dict(re.findall(r'<tr data-class="([^"]+)">(.*?)</tr>', html, re.S))
    assert set(shown) == set(counts)
    for job_class, c in counts.items():
        cells = data_values(shown[job_class], "data-metric")
        assert cells["executions"] == str(c["p"]) and cells["failures"] == str(c["f"])
        assert cells["total"] == f"{c['ms'] / 1000:.2f} s"
    assert "metrics-note" not in html


def test_sidekiq_6_pages_and_the_metrics_note(loaded6):
    html = loaded6.client.get("/sidekiq").text
    expected = loaded6.expected_stats()
    assert {k: v for k, v in data_values(html, "data-stat").items() if k in expected} == {
        k: f"{v:,}" for k, v in expected.items()
    }
    busy = loaded6.client.get("/sidekiq/busy").text
    assert len(rows(busy, "work")) == len(running_jids(loaded6.dump))  # the ``:workers`` hash of 6.4.1
    metrics = loaded6.client.get("/sidekiq/metrics").text
    assert 'id="metrics-note"' in metrics and "Sidekiq 6 records no execution metrics" in metrics


def test_a_queue_name_sidekiq_refuses_is_a_404_page(loaded):
    response = loaded.client.get("/sidekiq/queues/no%20such%3Cscript%3E")
    assert response.status_code == 404
    assert "No such queue" in response.text and "<script>" not in response.text


@pytest.mark.parametrize("url", ["redis://127.0.0.1:1/0", ""])
@pytest.mark.parametrize("path", ["/sidekiq", "/sidekiq/busy", "/sidekiq/queues", "/sidekiq/retries",
                                  "/sidekiq/metrics", "/sidekiq/queues/default", "/sidekiq/retries/1.5-abc",
                                  "/sidekiq/metrics/AJob", "/sidekiq/profiles"])  # fmt: skip
def test_redis_down_or_not_configured_is_a_clear_page(url, path):
    with monitor_client(Settings(redis_url=url, database_url="sqlite://")) as client:
        response = client.get(path)
        heartbeat = client.head("/sidekiq")
    assert response.status_code == 503 and heartbeat.status_code == 503
    assert "Sidekiq's Redis is unavailable" in response.text
    assert ("no Sidekiq Redis is configured" in response.text) == (url == "")


@pytest.mark.parametrize("path", ["/sidekiq/stats", "/sidekiq/stats/queues"])
def test_the_json_endpoints_answer_json_while_redis_is_down(path):
    with monitor_client(Settings(redis_url="redis://127.0.0.1:1/0", database_url="sqlite://")) as client:
        response = client.get(path)
    assert (response.status_code, response.headers["retry-after"]) == (
        503,
        "1",
    ) or response.status_code == 503
    assert response.json()["error"].startswith("Sidekiq's Redis is unavailable")


def test_the_metrics_class_filter(loaded):
    html = loaded.client.get("/sidekiq/metrics?period=1h&substr=mailer").text
    assert re.findall(r'<tr data-class="([^"]+)">', html) == ["MailerJob"]
    assert loaded.client.get("/sidekiq/metrics?period=3h").status_code == 422
