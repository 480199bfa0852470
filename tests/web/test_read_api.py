"""The read side over HTTP: lists, one job, history, durations, stats, OpenAPI; on both databases.

Jobs are built with explicit ``at`` times so statuses, times and durations are known exactly; the
expected answers are computed in the tests from the script of reports, not by the service's rules.
"""

from __future__ import annotations

import json
import math
import random
import re
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.web.app import create_app
from tests.web.helpers import iso

T0 = 1_700_000_000


def send(client, kind: str, jid: str, at: float | None = None, arguments: Any = None, **fields: str):
    """One report on its seed route, form-encoded as the seed's Faraday middleware sends it."""
    body = {"arguments": json.dumps([jid] if arguments is None else arguments), **fields}
    body.setdefault("job_class", "HardWorker")
    body.setdefault("queue", "default")
    if at is not None:
        body["at"] = str(at)
    if kind == "queued":
        response = client.post("/api/v1/jobs", data={"job_id": jid, **body})
    else:
        response = client.post(f"/api/v1/jobs/{jid}/{kind}", data=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def send_batch(client, items: list[dict[str, Any]]) -> None:
    response = client.post("/api/v1/events", json={"events": items})
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.text


def item(kind: str, jid: str, at: float, arguments: list[Any], **fields: str) -> dict[str, Any]:
    return {"event": kind, "job_id": jid, "at": at, "arguments": arguments, "job_class": "W", **fields}


def get(client, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params={name: value for name, value in params.items() if value is not None})
    assert response.status_code == 200, f"{path} {params}: {response.text}"
    return response.json()


def walk(client, path: str, limit: int = 1000, **params: Any) -> list[dict[str, Any]]:
    """Every job of a list, following next_cursor; checks each page's size on the way."""
    jobs, cursor = [], None
    while True:
        page = get(client, path, limit=limit, cursor=cursor, **params)
        assert len(page["data"]) <= limit
        jobs += page["data"]
        if page["next_cursor"] is None:
            return jobs
        assert len(page["data"]) == limit
        cursor = page["next_cursor"]


def jids(client, **params: Any) -> list[str]:
    return [job["jid"] for job in walk(client, "/api/v1/jobs", **params)]


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def expected_summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return dict.fromkeys(("count", "mean", "p50", "p95", "p99", "max"), None) | {"count": 0}
    return {
        "count": len(values),
        "mean": pytest.approx(sum(values) / len(values), abs=1e-6),
        "p50": nearest_rank(values, 0.50),
        "p95": nearest_rank(values, 0.95),
        "p99": nearest_rank(values, 0.99),
        "max": max(values),
    }


def summary_of(body: dict[str, Any]) -> dict[str, Any]:
    summary = body["summary"]
    return {"count": summary["count"]} | {
        name: summary[f"{name}_seconds"] for name in ("mean", "p50", "p95", "p99", "max")
    }


# --- lists ------------------------------------------------------------------------------------


def build_one_job_per_status(client) -> None:
    """Jobs created in this order (so newest first is the reverse)."""
    send(client, "queued", "q-1", T0)
    send(client, "queued", "s-1", T0)
    send(client, "started", "s-1", T0 + 1)
    send(client, "started", "c-1", T0 + 1)
    send(client, "complete", "c-1", T0 + 2)
    send(client, "queued", "q-2", T0)
    send(client, "started", "s-2", T0 + 1)
    send(client, "complete", "c-2", T0 + 2)
    send(client, "started", "c-2", T0 + 1)
    for kind, at in (("queued", T0), ("started", T0 + 1), ("complete", T0 + 2), ("started", T0 + 3)):
        send(client, kind, "rerun", at)


LISTS = [
    ("queued", ["q-2", "q-1"]),
    ("uncompleted", ["rerun", "s-2", "s-1"]),
    ("started", ["rerun", "s-2", "s-1"]),
    ("completed", ["c-2", "c-1"]),
    ("complete", ["c-2", "c-1"]),
    ("all", ["rerun", "c-2", "s-2", "q-2", "c-1", "s-1", "q-1"]),
    (None, ["rerun", "c-2", "s-2", "q-2", "c-1", "s-1", "q-1"]),
]


def test_it_lists_jobs_by_status_newest_first_with_the_seed_names_and_the_raw_ones(client):
    build_one_job_per_status(client)

    for status, expected in LISTS:
        assert jids(client, status=status) == expected, status
    listed = get(client, "/api/v1/jobs", status="completed")["data"]
    assert [job["status"] for job in listed] == ["complete", "complete"]
    assert listed[0]["started_to_completion_seconds"] == 1.0


FILTERED = [
    ("alice-upper", ["Alice@Example.com", 1], "queued"),
    ("alice-lower", [2, {"email": "alice@example.com"}], "started"),
    ("bob", ["bob"], "queued"),
    ("percent", ["100%"], "queued"),
    ("percent-free", ["100x"], "queued"),
    ("underscore", ["a_b"], "queued"),
    ("underscore-free", ["axb"], "queued"),
    ("backslash", ["C:\\temp"], "queued"),
]

NEEDLES = [
    ("ALICE", ["alice-lower", "alice-upper"]),
    ("alice@EXAMPLE.com", ["alice-lower", "alice-upper"]),
    ("email", ["alice-lower"]),
    ('"bob"', ["bob"]),
    ("%", ["percent"]),
    ("100%", ["percent"]),
    ("_", ["underscore"]),
    ("a_b", ["underscore"]),
    ("\\", ["backslash"]),
    ("nobody", []),
    ("", [jid for jid, _, _ in reversed(FILTERED)]),
]


def test_it_filters_by_a_case_insensitive_substring_of_the_arguments_with_literal_wildcards(client):
    for jid, arguments, kind in FILTERED:
        send(client, kind, jid, T0, arguments)

    for needle, expected in NEEDLES:
        assert jids(client, q=needle) == expected, needle
    assert jids(client, q="alice", status="queued") == ["alice-upper"]
    assert jids(client, q="alice", status="uncompleted") == ["alice-lower"]
    assert jids(client, q="alice", status="completed") == []
    assert jids(client, q="x" * 200) == []


def test_it_filters_by_job_class_and_queue(client):
    send(client, "queued", "mail-1", T0, job_class="MailWorker", queue="mail")
    send(client, "queued", "mail-2", T0, job_class="MailWorker", queue="default")
    send(client, "started", "hard-1", T0, job_class="HardWorker", queue="mail")
    send(client, "queued", "hard-2", T0, job_class="HardWorker", queue="default")

    assert jids(client, job_class="MailWorker") == ["mail-2", "mail-1"]
    assert jids(client, queue="mail") == ["hard-1", "mail-1"]
    assert jids(client, job_class="HardWorker", queue="default") == ["hard-2"]
    assert jids(client, job_class="HardWorker", status="uncompleted") == ["hard-1"]
    assert jids(client, job_class="mailworker") == [], "job_class is matched exactly"


def test_it_pages_through_every_job_exactly_once_newest_first(client):
    created = [f"page-{n:02d}" for n in range(23)]
    for n, jid in enumerate(created):
        send(client, "queued", jid, T0 + n)
        if n < 10:
            send(client, "started", jid, T0 + n + 1)

    pages, cursor = [], None
    while True:
        page = get(client, "/api/v1/jobs", limit=5, cursor=cursor)
        pages.append([job["jid"] for job in page["data"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert isinstance(cursor, int)
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [jid for page in pages for jid in page] == created[::-1]

    uncompleted = get(client, "/api/v1/jobs", status="uncompleted", limit=5)
    assert [job["jid"] for job in uncompleted["data"]] == created[9:4:-1]
    last = get(client, "/api/v1/jobs", status="uncompleted", limit=5, cursor=uncompleted["next_cursor"])
    assert [job["jid"] for job in last["data"]] == created[4::-1]
    assert last["next_cursor"] is None
    assert jids(client, limit=1, status="queued") == created[:9:-1]


BAD_QUERIES = [
    ("/api/v1/jobs", {"limit": 0}, "limit"),
    ("/api/v1/jobs", {"limit": 5000}, "limit"),
    ("/api/v1/jobs", {"limit": "ten"}, "limit"),
    ("/api/v1/jobs", {"status": "bogus"}, "status"),
    ("/api/v1/jobs", {"q": "x" * 201}, "q"),
    ("/api/v1/jobs", {"cursor": -1}, "cursor"),
    ("/api/v1/jobs", {"job_class": "W" * 256}, "job_class"),
    ("/api/v1/durations", {"from": "enqueued"}, "from"),
    ("/api/v1/durations", {"limit": 0}, "limit"),
    ("/api/v1/durations", {"q": "x" * 201}, "q"),
    ("/api/v1/durations", {"summary": "maybe"}, "summary"),
]


@pytest.mark.parametrize(
    ("path", "params", "name"), BAD_QUERIES, ids=[f"{p.rsplit('/', 1)[1]}-{n}" for p, _, n in BAD_QUERIES]
)
def test_it_refuses_bad_query_parameters_naming_them(client, path, params, name):
    response = client.get(path, params=params)

    assert response.status_code == 422, response.text
    body = response.json()
    assert name in body["error"]
    assert [error["loc"] for error in body["detail"]] == [["query", name]]


@pytest.mark.parametrize("path", ["/api/v1/jobs", "/api/v1/durations"])
def test_it_answers_a_cursor_beyond_any_id_without_a_server_error(settings, path):
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        send(client, "queued", "only", T0)
        response = client.get(path, params={"cursor": 2**63})
    assert response.status_code in (200, 422), response.text


def test_it_answers_a_filter_holding_a_nul_character_without_a_server_error(client, request):
    send(client, "queued", "only", T0)

    for params in ({"q": "a\x00"}, {"job_class": "W\x00"}, {"queue": "q\x00"}):
        response = client.get("/api/v1/jobs", params=params)
        assert response.status_code in (200, 422), f"{params}: {response.text}"
        if response.status_code == 200:
            assert response.json()["data"] == []


def test_it_matches_non_ascii_letters_case_insensitively(client, request):
    send(client, "queued", "accented", T0, ["Élan Vital", "ÖSTERREICH"])
    send(client, "queued", "plain", T0, ["elan"])

    assert jids(client, q="Élan") == ["accented"]
    assert jids(client, q="élan") == ["accented"]
    assert jids(client, q="österreich") == ["accented"]


# --- one job and its history ---------------------------------------------------------------


def test_it_shows_a_job_with_its_history_in_event_time_order(client):
    for kind, at in (("complete", T0 + 9), ("started", T0 + 5), ("queued", T0), ("started", T0 + 1.5)):
        send(client, kind, "story", at, ["story", 7], job_class="StoryWorker", queue="books")

    document = get(client, "/api/v1/jobs/story")
    history = document.pop("history")
    assert document == {
        "jid": "story",
        "job_class": "StoryWorker",
        "queue": "books",
        "arguments": ["story", 7],
        "status": "complete",
        "queued_at": iso(T0),
        "started_at": iso(T0 + 5),
        "completed_at": iso(T0 + 9),
        "attempts": 2,
        "restarted_from": None,
        "worker": None,
        "queued_to_completion_seconds": 9.0,
        "started_to_completion_seconds": 4.0,
    }
    assert [(entry["event"], entry["at"]) for entry in history] == [
        ("queued", iso(T0)),
        ("started", iso(T0 + 1.5)),
        ("started", iso(T0 + 5)),
        ("complete", iso(T0 + 9)),
    ]
    for entry in history:
        assert set(entry) == {"event", "at", "recorded_at", "detail"}
        assert datetime.fromisoformat(entry["recorded_at"]).utcoffset().total_seconds() == 0
        assert entry["detail"] is None

    assert get(client, "/api/v1/jobs/story/history") == {"jid": "story", "history": history}


def test_it_answers_404_json_for_an_unknown_job(client):
    send(client, "queued", "known", T0)

    for path in ("/api/v1/jobs/unknown", "/api/v1/jobs/unknown/history", "/api/v1/jobs/KNOWN"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"] == "application/json"
        assert isinstance(response.json()["detail"], str)


# --- durations ------------------------------------------------------------------------------


def test_it_summarises_durations_with_nearest_rank_percentiles(client):
    rng = random.Random(7)
    seconds = list(range(1, 101))
    rng.shuffle(seconds)
    expected = {}
    items = []
    for n, duration in enumerate(seconds):
        jid, base = f"dur-{n:03d}", T0 + n * 1000
        expected[jid] = duration
        items += [
            item("queued", jid, base, ["report", n]),
            item("started", jid, base + 0.25, ["report", n]),
            item("complete", jid, base + duration, ["report", n]),
        ]
    base = T0 + 200_000
    items += [
        item("queued", "noise-queued", base, ["report"]),
        item("started", "noise-started", base, ["report"]),
        item("queued", "noise-rerun", base, ["report"]),
        item("started", "noise-rerun", base + 1, ["report"]),
        item("complete", "noise-rerun", base + 500, ["report"]),
        item("started", "noise-rerun", base + 900, ["report"]),
        item("queued", "other", base, ["other"]),
        item("complete", "other", base + 5000, ["other"]),
    ]
    rng.shuffle(items)
    send_batch(client, items)

    from_queued = get(client, "/api/v1/durations", q="report", limit=1000)
    assert from_queued["from"] == "queued"
    assert from_queued["next_cursor"] is None
    assert {job["jid"]: job["queued_to_completion_seconds"] for job in from_queued["data"]} == expected
    assert {job["jid"]: job["started_to_completion_seconds"] for job in from_queued["data"]} == {
        jid: duration - 0.25 for jid, duration in expected.items()
    }
    assert from_queued["summary"] == {
        "count": 100,
        "mean_seconds": 50.5,
        "p50_seconds": 50.0,
        "p95_seconds": 95.0,
        "p99_seconds": 99.0,
        "max_seconds": 100.0,
    }

    from_started = get(client, "/api/v1/durations", **{"from": "started", "q": "REPORT", "limit": 1000})
    assert from_started["from"] == "started"
    assert {job["jid"] for job in from_started["data"]} == set(expected)
    assert from_started["summary"] == {
        "count": 100,
        "mean_seconds": 50.25,
        "p50_seconds": 49.75,
        "p95_seconds": 94.75,
        "p99_seconds": 98.75,
        "max_seconds": 99.75,
    }

    everything = get(client, "/api/v1/durations", limit=1000)
    assert {job["jid"] for job in everything["data"]} == {*expected, "other"}
    assert (everything["summary"]["count"], everything["summary"]["max_seconds"]) == (101, 5000.0)

    first = get(client, "/api/v1/durations", q="report")
    assert (len(first["data"]), first["summary"]["count"]) == (50, 100)
    second = get(client, "/api/v1/durations", q="report", cursor=first["next_cursor"], summary="false")
    assert "summary" not in second
    assert second["next_cursor"] is None
    assert {job["jid"] for job in first["data"] + second["data"]} == set(expected)


def test_it_counts_a_duration_only_when_both_its_ends_are_known(client):
    send(client, "started", "no-queued", T0)
    send(client, "complete", "no-queued", T0 + 4)
    send(client, "queued", "no-started", T0)
    send(client, "complete", "no-started", T0 + 6)
    send(client, "complete", "complete-only", T0 + 8)

    from_queued = get(client, "/api/v1/durations", **{"from": "queued"})
    assert [(job["jid"], job["queued_to_completion_seconds"]) for job in from_queued["data"]] == [
        ("no-started", 6.0)
    ]
    from_started = get(client, "/api/v1/durations", **{"from": "started"})
    assert [(job["jid"], job["started_to_completion_seconds"]) for job in from_started["data"]] == [
        ("no-queued", 4.0)
    ]
    assert from_started["summary"]["count"] == 1
    assert get(client, "/api/v1/jobs/complete-only")["status"] == "complete"


def test_it_summarises_no_durations_as_an_empty_summary(client):
    send(client, "started", "running", T0)

    body = get(client, "/api/v1/durations", **{"from": "started"})
    empty = {"count": 0, **dict.fromkeys(("mean", "p50", "p95", "p99", "max"), None)}
    empty = {f"{k}_seconds" if k != "count" else k: v for k, v in empty.items()}
    assert body["pruned_summary"] == {**empty, "percentiles_estimated": True}  # nothing pruned yet
    del body["pruned_summary"]
    assert body == {
        "from": "started",
        "data": [],
        "next_cursor": None,
        "summary": {
            "count": 0,
            "mean_seconds": None,
            "p50_seconds": None,
            "p95_seconds": None,
            "p99_seconds": None,
            "max_seconds": None,
            "percentiles_estimated": True,
        },
    }


# --- stats and documentation ----------------------------------------------------------------


def test_it_counts_jobs_per_status(client):
    assert get(client, "/api/v1/stats") == {"jobs": {"queued": 0, "started": 0, "complete": 0, "total": 0}}
    build_one_job_per_status(client)

    assert get(client, "/api/v1/stats") == {"jobs": {"queued": 2, "started": 3, "complete": 2, "total": 7}}


ROUTES = {
    "/api/v1/jobs": {"get", "post"},
    "/api/v1/jobs/{job_id}/started": {"post"},
    "/api/v1/jobs/{job_id}/complete": {"post"},
    "/api/v1/events": {"post"},
    "/api/v1/jobs/{job_id}": {"get"},
    "/api/v1/jobs/{job_id}/history": {"get"},
    "/api/v1/durations": {"get"},
    "/api/v1/stats": {"get"},
    "/api/v1/jobs/restart": {"post"},
    "/api/v1/jobs/{job_id}/failed": {"post"},
    "/api/v1/liveness": {"get"},
    "/api/v1/recoveries": {"get"},
    "/api/v1/alerts": {"get"},
    "/api/v1/apps": {"get"},
    "/api/v1/alerts/test": {"post"},
    "/healthz": {"get"},
    "/metrics": {"get"},
}

BODIES = [
    ("/api/v1/jobs", "JobQueuedIn"),
    ("/api/v1/jobs/{job_id}/started", "JobReportIn"),
    ("/api/v1/jobs/{job_id}/complete", "JobReportIn"),
    ("/api/v1/jobs/{job_id}/failed", "JobReportIn"),
    ("/api/v1/events", "EventsIn"),
]


def test_it_publishes_every_route_and_the_request_bodies_in_openapi(client):
    schema = get(client, "/openapi.json")

    assert {path: set(methods) for path, methods in schema["paths"].items()} == ROUTES
    components = schema["components"]["schemas"]
    for path, model in BODIES:
        content = schema["paths"][path]["post"]["requestBody"]["content"]
        # Batches are JSON only; the seed's routes take a form too.
        forms = set() if path == "/api/v1/events" else {"application/x-www-form-urlencoded"}
        assert set(content) == {*forms, "application/json"}, path
        for media in content.values():
            assert media["schema"] == {"$ref": f"#/components/schemas/{model}"}
        assert model in components
    assert set(components["JobQueuedIn"]["required"]) == {"job_id", "arguments", "job_class"}
    assert set(components["JobReportIn"]["properties"]) == {
        "arguments",
        "job_class",
        "queue",
        "at",
        "worker",
        "error",
        "payload",
    }
    assert "job_id" not in components["JobReportIn"]["properties"]
    assert components["EventsIn"]["required"] == ["events"]
    assert set(components["EventIn"]["properties"]) >= {
        "event",
        "job_id",
        "arguments",
        "at",
        "worker",
        "error",
    }
    assert components["EventsIn"]["properties"]["events"]["items"] == {"$ref": "#/components/schemas/EventIn"}
    assert {"WorkerIn", "ErrorIn"} <= set(components)
    assert {"201", "200"} <= set(schema["paths"]["/api/v1/jobs"]["post"]["responses"])


def test_it_serves_the_interactive_docs(client):
    response = client.get("/docs")

    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    assert "/openapi.json" in response.text


# --- a scripted stream of reports -----------------------------------------------------------

FATES = ("queued", "started", "complete", "retried_twice", "complete_first", "rerun")
TENANTS = ("acme", "Globex", "initech")
CLASSES = ("MailWorker", "HardWorker")


def script(rng: random.Random) -> list[dict[str, Any]]:
    """Thirty jobs, five of each fate, with their reports and what the ledger must end up with."""
    fates = [fate for fate in FATES for _ in range(5)]
    rng.shuffle(fates)
    jobs = []
    for n, fate in enumerate(fates):
        base = T0 + n * 1000 + rng.choice((0, 0.25, 0.5))
        start, run = base + rng.randint(1, 30), rng.randint(1, 120) + rng.choice((0, 0.5))
        tenant = rng.choice(TENANTS)
        job = {
            "jid": f"stream-{n:02d}",
            "fate": fate,
            "tenant": tenant,
            "arguments": [n, f"{tenant}-customer-{n}", {"plan": rng.choice(("gold", "silver"))}],
            "job_class": rng.choice(CLASSES),
            "queue": rng.choice(("default", "critical")),
            "queued_at": base,
            "started_at": None,
            "completed_at": None,
            "attempts": 0,
            "status": "queued",
        }
        events = [("queued", base)]
        if fate in ("started", "complete", "complete_first", "rerun"):
            events.append(("started", start))
            job.update(started_at=start, attempts=1, status="started")
        if fate in ("complete", "complete_first", "rerun"):
            events.append(("complete", start + run))
            job.update(completed_at=start + run, status="complete")
        if fate == "retried_twice":
            retries = [start, start + 40, start + 95]
            events += [("started", at) for at in retries] + [("complete", retries[-1] + run)]
            job.update(started_at=retries[-1], completed_at=retries[-1] + run, attempts=3, status="complete")
        if fate == "rerun":
            events.append(("started", start + run + 300))
            job.update(started_at=start + run + 300, attempts=2, status="started")
        job["events"] = events
        jobs.append(job)
    return jobs


def arrival_order(rng: random.Random, jobs: list[dict[str, Any]]) -> list[tuple[dict[str, Any], str, float]]:
    """Every report shuffled; a complete_first job's reports arrive newest first (complete first)."""
    stream = [(job, kind, at) for job in jobs for kind, at in job["events"]]
    rng.shuffle(stream)
    for job in jobs:
        if job["fate"] == "complete_first":
            slots = [i for i, (owner, _, _) in enumerate(stream) if owner is job]
            backwards = sorted(job["events"], key=lambda event: event[1], reverse=True)
            for slot, (kind, at) in zip(slots, backwards, strict=True):
                stream[slot] = (job, kind, at)
    return stream


def wanted(job: dict[str, Any], needle: str | None) -> bool:
    """Whether the filter should find the job: every job has "customer", and one tenant's name."""
    return needle is None or needle == "customer" or needle.lower() == job["tenant"].lower()


def post_report(client, rng: random.Random, job: dict[str, Any], kind: str, at: float) -> None:
    fields = {"job_class": job["job_class"], "queue": job["queue"]}
    if rng.random() < 0.3:  # a JSON body with the arguments as an array, as the gem may send
        path = "/api/v1/jobs" if kind == "queued" else f"/api/v1/jobs/{job['jid']}/{kind}"
        body = {"job_id": job["jid"], "arguments": job["arguments"], "at": at, **fields}
        response = client.post(path, json=body)
        assert response.status_code in (200, 201), response.text
    else:
        send(client, kind, job["jid"], at, job["arguments"], **fields)


def test_a_scripted_stream_of_reports_in_shuffled_order_gives_exactly_the_expected_answers(client):
    rng = random.Random(1234)
    jobs = script(rng)
    stream = arrival_order(rng, jobs)
    first_arrivals: list[str] = []
    for job, kind, at in stream:
        post_report(client, rng, job, kind, at)
        if job["jid"] not in first_arrivals:
            first_arrivals.append(job["jid"])
    by_jid = {job["jid"]: job for job in jobs}
    newest_first = [by_jid[jid] for jid in reversed(first_arrivals)]

    # Every job: status, times, attempts, durations, description.
    for job in jobs:
        document = get(client, f"/api/v1/jobs/{job['jid']}")
        assert document["status"] == job["status"], job["fate"]
        assert document["attempts"] == job["attempts"], job["fate"]
        for name in ("queued_at", "started_at", "completed_at"):
            assert document[name] == iso(job[name]), (job["fate"], name)
        done = job["status"] == "complete"
        assert document["queued_to_completion_seconds"] == (
            job["completed_at"] - job["queued_at"] if done else None
        )
        assert document["started_to_completion_seconds"] == (
            job["completed_at"] - job["started_at"] if done else None
        )
        assert (document["arguments"], document["job_class"], document["queue"]) == (
            job["arguments"],
            job["job_class"],
            job["queue"],
        )
        assert [entry["at"] for entry in document["history"]] == sorted(iso(at) for _, at in job["events"])

    # Every list, with and without a filter, walked a few jobs per page.
    selections = {
        "queued": {"queued"},
        "uncompleted": {"started"},
        "started": {"started"},
        "completed": {"complete"},
        "complete": {"complete"},
        "all": {"queued", "started", "complete"},
    }
    needles = [None, "ACME", "globex", "Initech", "customer"]
    for selection, statuses in selections.items():
        for needle in needles:
            expected = [
                job["jid"] for job in newest_first if job["status"] in statuses and wanted(job, needle)
            ]
            assert jids(client, status=selection, q=needle, limit=7) == expected, (selection, needle)
        for job_class in CLASSES:
            expected = [
                job["jid"]
                for job in newest_first
                if job["status"] in statuses and job["job_class"] == job_class
            ]
            assert jids(client, status=selection, job_class=job_class) == expected, (selection, job_class)

    # Durations from queued and from started, with their summaries.
    for origin in ("queued", "started"):
        for needle in (None, *TENANTS):
            done = [
                job for job in newest_first if job["status"] == "complete" and needle in (None, job["tenant"])
            ]
            durations = [job["completed_at"] - job[f"{origin}_at"] for job in done]
            data = walk(client, "/api/v1/durations", limit=4, **{"from": origin, "q": needle})
            assert [job["jid"] for job in data] == [job["jid"] for job in done], (origin, needle)
            assert [job[f"{origin}_to_completion_seconds"] for job in data] == durations
            body = get(client, "/api/v1/durations", **{"from": origin, "q": needle, "exact": "true"})
            assert summary_of(body) == expected_summary(durations), (origin, needle)
            if needle is None:
                exact = body["summary"]
        # Without a filter or ``exact``, from the roll-ups: count and mean the same, each
        # percentile at most 19% above the exact one. The maximum is the longest the roll-ups
        # held: a job that ran again after it completed leaves its first run's duration there.
        rolled = get(client, "/api/v1/durations", **{"from": origin})["summary"]
        assert rolled.pop("percentiles_estimated") is True
        assert (rolled["count"], rolled["mean_seconds"]) == (
            exact["count"],
            pytest.approx(exact["mean_seconds"]),
        )
        assert rolled["max_seconds"] >= exact["max_seconds"]
        for name in ("p50_seconds", "p95_seconds", "p99_seconds"):
            assert exact[name] <= rolled[name] <= min(exact[name] * 1.19, rolled["max_seconds"]), name

    counts = {
        status: sum(job["status"] == status for job in jobs) for status in ("queued", "started", "complete")
    }
    assert get(client, "/api/v1/stats") == {"jobs": {**counts, "total": 30}}
    assert counts == {"queued": 5, "started": 10, "complete": 15}


def test_it_answers_the_liveness_of_uncompleted_jobs(client, redis_client):
    send(client, "started", "anon", at=1_700_000_000)

    body = get(client, "/api/v1/liveness")

    assert body["data"] == [
        {"jid": "anon", "liveness": "unknown", "reason": "no worker identity was reported"}
    ]
    assert body["next_cursor"] is None
    assert body["page_counts"] == {"running": 0, "retrying": 0, "orphaned": 0, "unknown": 1}


def test_the_liveness_list_pages_newest_first_and_a_cursor_walk_returns_each_uncompleted_job_once(
    client, redis_client
):
    started = [f"s{n:02}" for n in range(7)]
    for n, jid in enumerate(started):
        send(client, "started", jid, at=1_700_000_000 + n, arguments=["needle" if n % 2 else "hay"])
    send(client, "queued", "waiting", at=1_700_000_100)  # never started: not uncompleted
    send(client, "started", "done", at=1_700_000_100)
    send(client, "complete", "done", at=1_700_000_200)

    first = get(client, "/api/v1/liveness", limit=3)
    walked = walk(client, "/api/v1/liveness", limit=3)
    matching = walk(client, "/api/v1/liveness", limit=2, q="NEEDLE")

    assert [row["jid"] for row in first["data"]] == ["s06", "s05", "s04"]
    assert first["page_counts"] == {"running": 0, "retrying": 0, "orphaned": 0, "unknown": 3}
    assert [row["jid"] for row in walked] == started[::-1]
    assert [row["jid"] for row in matching] == ["s05", "s03", "s01"]
    assert client.get("/api/v1/liveness", params={"limit": 1001}).status_code == 422
    assert len(get(client, "/api/v1/liveness")["data"]) == 7  # default 50


@pytest.mark.parametrize("path", ["/api/v1/jobs/%00", "/api/v1/jobs/a%00b/history", "/jobs/%00"])
def test_a_nul_in_a_path_jid_is_no_job_on_either_database(client, path):
    response = client.get(path)

    assert response.status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/jobs", "GET, POST"),
        ("DELETE", "/api/v1/jobs", "GET, POST"),
        ("PUT", "/api/v1/jobs/restart", "GET, POST"),
        ("GET", "/api/v1/events", "POST"),
    ],
)
def test_a_405_names_every_method_the_path_answers(client, method, path, allowed):
    response = client.request(method, path)

    assert response.status_code == 405
    assert response.headers["allow"] == allowed
    assert response.json()["error"]


def test_openapi_declares_how_the_api_is_authenticated_and_that_batches_are_json(client):
    schema = get(client, "/openapi.json")

    schemes = schema["components"]["securitySchemes"]
    assert schemes["apiToken"] == {**schemes["apiToken"], "type": "http", "scheme": "bearer"}
    assert schemes["apiTokenAsPassword"]["scheme"] == "basic"
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            if path.startswith("/api/v1/") or path == "/metrics":
                assert operation["security"] == [{"apiToken": []}, {"apiTokenAsPassword": []}], path
            else:
                assert "security" not in operation, path
    assert list(schema["paths"]["/api/v1/events"]["post"]["requestBody"]["content"]) == ["application/json"]


@pytest.mark.parametrize(
    ("path", "script"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
def test_the_api_docs_load_nothing_from_the_internet(client, path, script):
    page = client.get(path)

    assert page.status_code == 200
    assert "https://" not in page.text and "http://" not in page.text
    assets = re.findall(r'(?:src|href)="(/docs/assets/[^"]+)"', page.text)
    assert script in {asset.rsplit("/", 1)[1] for asset in assets}
    for asset in assets:
        assert client.get(asset).status_code == 200, asset
    assert "/openapi.json" in page.text
