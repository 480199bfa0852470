"""POST /api/v1/events: a batch of reports, one result per item, on SQLite and on PostgreSQL."""

from __future__ import annotations

import random
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.web.app import create_app
from tests.web.helpers import iso, job, total

T0 = 1_700_000_000


def event(kind: str, jid: str, at: float | None = None, **fields: Any) -> dict[str, Any]:
    item = {"event": kind, "job_id": jid, "arguments": [jid], "job_class": "BatchWorker", "queue": "default"}
    if at is not None:
        item["at"] = at
    return {**item, **fields}


def post_events(client, events: list[Any]) -> dict[str, Any]:
    response = client.post("/api/v1/events", json={"events": events})
    assert response.status_code == 200, response.text
    return response.json()


def test_it_stores_the_valid_items_and_rejects_the_invalid_ones_one_by_one(client):
    items = [
        event("queued", "a", T0),
        event("queued", "bad-class", T0, job_class=None),
        event("started", "a", T0 + 1),
        event("finished", "bad-event", T0),
        event("queued", "bad id", T0),
        event("started", "bad-at", -5),
        event("complete", "bad-args", T0, arguments='{"not": "an array"}'),
        {"job_id": "no-event", "arguments": [], "job_class": "W"},
        event("complete", "b", T0 + 2, arguments="[1, 2]"),
        event("started", "restarted-kind", T0, event="restarted"),
    ]
    items[1].pop("job_class")

    body = post_events(client, items)

    assert (body["stored"], body["rejected"]) == (3, 7)
    results = body["results"]
    # job_status is the job as committed at the end of the batch.
    assert results[0] == {"status": 201, "jid": "a", "job_status": "started"}
    assert results[2] == {"status": 200, "jid": "a", "job_status": "started"}
    assert results[8] == {"status": 201, "jid": "b", "job_status": "complete"}
    rejected = {1: "job_class", 3: "event", 4: "job_id", 5: "at", 6: "arguments", 7: "event", 9: "event"}
    for index, field in rejected.items():
        assert results[index]["status"] == 422
        assert [error["loc"] for error in results[index]["detail"]] == [["body", "events", index, field]]

    assert total(client) == 2
    assert job(client, "a")["status"] == "started"
    assert job(client, "b")["arguments"] == [1, 2]
    for jid in ("bad-class", "bad-event", "bad-at", "bad-args", "no-event", "restarted-kind"):
        assert client.get(f"/api/v1/jobs/{jid}/history").status_code == 404


def test_prefer_return_minimal_lists_only_the_refused_items_by_index(client):
    items = [event("queued", "a", T0), event("queued", "bad id", T0), event("complete", "a", T0 + 2)]

    response = client.post(
        "/api/v1/events", json={"events": items}, headers={"Prefer": "respond-async, return=minimal"}
    )

    assert response.status_code == 200, response.text
    assert response.headers["preference-applied"] == "return=minimal"
    body = response.json()
    assert (body["stored"], body["rejected"]) == (2, 1)
    assert "results" not in body
    (refused,) = body["refused"]
    assert (refused["index"], refused["status"]) == (1, 422)
    assert [error["loc"] for error in refused["detail"]] == [["body", "events", 1, "job_id"]]
    assert job(client, "a")["status"] == "complete"


def test_it_counts_a_duplicate_inside_one_batch_once(client):
    items = [
        event("started", "dup", T0 + 1),
        event("started", "dup", T0 + 1),
        event("complete", "dup", T0 + 3),
    ]
    items += [event("complete", "dup", T0 + 3)]

    body = post_events(client, items)

    assert [result["status"] for result in body["results"]] == [201, 200, 200, 200]
    document = job(client, "dup")
    assert (document["status"], document["attempts"]) == ("complete", 1)
    assert [entry["event"] for entry in document["history"]] == ["started", "complete"]

    again = post_events(client, items)
    assert [result["status"] for result in again["results"]] == [200, 200, 200, 200]
    assert job(client, "dup") == document


def test_it_folds_a_shuffled_batch_of_many_jobs_into_their_final_states(client):
    rng = random.Random(20240611)
    expected: dict[str, dict[str, Any]] = {}
    items = []
    for n in range(60):
        jid, base = f"many-{n:02d}", T0 + n * 100
        fate = ("queued", "started", "complete", "retried", "rerun")[n % 5]
        timeline = {
            "queued": [("queued", base)],
            "started": [("queued", base), ("started", base + 1)],
            "complete": [("queued", base), ("started", base + 2), ("complete", base + 7)],
            "retried": [
                ("queued", base),
                ("started", base + 1),
                ("started", base + 4),
                ("complete", base + 6),
            ],
            "rerun": [("queued", base), ("started", base + 1), ("complete", base + 3), ("started", base + 9)],
        }[fate]
        expected[jid] = {
            "queued": ("queued", 0, base, None, None),
            "started": ("started", 1, base, base + 1, None),
            "complete": ("complete", 1, base, base + 2, base + 7),
            "retried": ("complete", 2, base, base + 4, base + 6),
            "rerun": ("started", 2, base, base + 9, base + 3),
        }[fate]
        items += [event(kind, jid, at) for kind, at in timeline]
    rng.shuffle(items)

    body = post_events(client, items)

    assert (body["stored"], body["rejected"]) == (len(items), 0)
    first_seen = set()
    for item, result in zip(items, body["results"], strict=True):
        assert result["jid"] == item["job_id"]
        assert result["status"] == (200 if item["job_id"] in first_seen else 201)
        assert result["job_status"] == expected[item["job_id"]][0]
        first_seen.add(item["job_id"])
    listed = client.get("/api/v1/jobs", params={"limit": 1000}).json()["data"]
    assert len(listed) == 60
    for document in listed:
        status, attempts, queued_at, started_at, completed_at = expected[document["jid"]]
        assert (document["status"], document["attempts"]) == (status, attempts)
        assert document["queued_at"] == iso(queued_at)
        assert document["started_at"] == iso(started_at)
        assert document["completed_at"] == iso(completed_at)


def test_it_refuses_a_batch_over_the_configured_limit_and_stores_nothing(client, settings):
    limit = settings.max_batch_reports
    assert limit == 5000
    items = [
        {"event": "queued", "job_id": f"j{n}", "arguments": "[]", "job_class": "W"} for n in range(limit + 1)
    ]

    response = client.post("/api/v1/events", json={"events": items})

    assert response.status_code == 413
    assert "5000" in response.json()["error"]
    assert total(client) == 0


def test_it_accepts_a_batch_of_exactly_the_limit(settings):
    small = settings.model_copy(update={"max_batch_reports": 3})
    with TestClient(create_app(small)) as client:
        items = [event("queued", f"lim-{n}", T0 + n) for n in range(3)]
        assert post_events(client, items)["stored"] == 3
        response = client.post("/api/v1/events", json={"events": [*items, event("queued", "lim-3", T0)]})
        assert response.status_code == 413
        assert total(client) == 3


def test_it_accepts_an_empty_batch(client):
    assert post_events(client, []) == {"stored": 0, "rejected": 0, "results": []}
    assert total(client) == 0


BAD_BATCHES = [
    ("events missing", {"json": {"evts": []}}, 422, "events"),
    ("events not a list", {"json": {"events": {"event": "queued"}}}, 422, "events"),
    ("body a list", {"json": [event("queued", "x", T0)]}, 422, None),
    (
        "body not JSON",
        {"content": b'{"events": [', "headers": {"content-type": "application/json"}},
        400,
        None,
    ),
    ("body over 1 MiB", {"json": {"events": [], "pad": "x" * (1024 * 1024)}}, 413, None),
]


@pytest.mark.parametrize(
    ("name", "request_", "status", "field"), BAD_BATCHES, ids=[b[0] for b in BAD_BATCHES]
)
def test_it_refuses_a_malformed_batch(client, name, request_, status, field):
    response = client.post("/api/v1/events", **request_)

    assert response.status_code == status, response.text
    if field is not None:
        assert field in response.json()["error"]
        assert response.json()["detail"][0]["loc"] == ["body", field]
    assert total(client) == 0


def test_it_rejects_an_item_the_database_cannot_hold_without_failing_its_neighbours(client):
    items = [event("queued", "fine", T0), event("queued", "nul", T0, job_class="Bad\x00Worker")]

    response = client.post("/api/v1/events", json={"events": items})

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results[0]["status"] == 201
    assert results[1]["status"] == 422
    assert results[1]["detail"][0]["loc"] == ["body", "events", 1, "job_class"]
    assert total(client) == 1


def test_an_item_that_is_not_an_object_gets_its_own_422(client):
    good = {"event": "queued", "job_id": "fine", "arguments": "[]", "job_class": "K"}
    response = client.post("/api/v1/events", json={"events": [42, good]})

    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["status"] == 422
    assert first["detail"][0]["loc"] == ["body", "events", 0]
    assert second["status"] == 201


def test_a_batch_carries_workers_on_starts_and_errors_on_failures(client):
    worker = {"identity": "vm:1:abc", "hostname": "vm", "pid": 1, "thread": "t1"}
    body = post_events(
        client,
        [
            event("started", "bf", at=1_700_000_000, worker=worker),
            event("failed", "bf", at=1_700_000_001, error={"class": "KeyError", "message": "plan"}),
        ],
    )

    assert [result["job_status"] for result in body["results"]] == ["started", "started"]
    document = job(client, "bf")
    assert document["worker"] == worker
    assert [entry["detail"] for entry in document["history"]] == [
        {"worker": worker},
        {"error": {"class": "KeyError", "message": "plan"}},
    ]
