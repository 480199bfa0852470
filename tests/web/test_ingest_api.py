"""The seed's three report routes over HTTP, on SQLite and on PostgreSQL.

Bodies are form-encoded exactly as the seed's Faraday middlewares send them (``arguments`` is JSON
text), or JSON (``arguments`` as JSON text or as an array). Event times are chosen with ``at`` so
every time and duration is known exactly.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import text

from tests.web.helpers import iso, job, total

T0 = 1_700_000_000  # 2023-11-14T22:13:20Z
ARGS = [42, "alice@example.com"]


def fields(arguments: Any = ARGS, job_class: str = "HardWorker", queue: str = "default", **extra: Any):
    """Form fields as Faraday sends the seed's hash: every value a string, arguments as JSON text."""
    body = {"arguments": json.dumps(arguments), "job_class": job_class, "queue": queue}
    body.update({name: str(value) for name, value in extra.items()})
    return body


def queued(client, jid: str, **extra: Any):
    return client.post("/api/v1/jobs", data={"job_id": jid, **fields(**extra)})


def started(client, jid: str, **extra: Any):
    return client.post(f"/api/v1/jobs/{jid}/started", data=fields(**extra))


def complete(client, jid: str, **extra: Any):
    return client.post(f"/api/v1/jobs/{jid}/complete", data=fields(**extra))


def events_of(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(entry["event"], entry["at"]) for entry in document["history"]]


def assert_created(response, status: int = 201) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


# --- the seed's happy path ------------------------------------------------------------------


def test_it_records_a_queued_report_sent_exactly_as_faraday_encodes_it(client):
    # Faraday's FlatParamsEncoder sorts the keys, escapes like CGI.escape and sends a space as '+'.
    body = (
        "arguments=%5B42%2C%22alice%40example.com%22%2C%22two+words%22%5D"
        "&job_class=HardWorker&job_id=2f1c0a9e8b7d6c5b4a392817&queue=default"
    )
    response = client.post(
        "/api/v1/jobs",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded", "user-agent": "Faraday v2.9.0"},
    )

    document = assert_created(response)
    queued_at = datetime.fromisoformat(document.pop("queued_at"))
    assert queued_at.utcoffset() is not None
    assert document == {
        "jid": "2f1c0a9e8b7d6c5b4a392817",
        "job_class": "HardWorker",
        "queue": "default",
        "arguments": [42, "alice@example.com", "two words"],
        "status": "queued",
        "started_at": None,
        "completed_at": None,
        "attempts": 0,
        "restarted_from": None,
        "worker": None,
        "queued_to_completion_seconds": None,
        "started_to_completion_seconds": None,
    }


def test_it_answers_201_for_a_new_job_then_200_for_the_known_one(client):
    first = assert_created(queued(client, "abc", at=T0))
    assert first["status"] == "queued"
    assert first["queued_at"] == iso(T0)

    assert assert_created(started(client, "abc", at=T0 + 2), 200)["status"] == "started"
    document = assert_created(complete(client, "abc", at=T0 + 10.5), 200)

    assert document == {
        "jid": "abc",
        "job_class": "HardWorker",
        "queue": "default",
        "arguments": ARGS,
        "status": "complete",
        "queued_at": "2023-11-14T22:13:20+00:00",
        "started_at": "2023-11-14T22:13:22+00:00",
        "completed_at": "2023-11-14T22:13:30.500000+00:00",
        "attempts": 1,
        "restarted_from": None,
        "worker": None,
        "queued_to_completion_seconds": 10.5,
        "started_to_completion_seconds": 8.5,
    }
    assert assert_created(queued(client, "abc", at=T0 - 1), 200)["status"] == "complete"
    assert total(client) == 1


def test_it_records_the_seed_flow_without_at_using_the_receive_time(client):
    assert queued(client, "no-at").status_code == 201
    assert started(client, "no-at").status_code == 200
    document = assert_created(complete(client, "no-at"), 200)

    assert document["status"] == "complete"
    assert document["attempts"] == 1
    times = [datetime.fromisoformat(document[f"{name}_at"]) for name in ("queued", "started", "completed")]
    assert times == sorted(times)
    assert document["queued_to_completion_seconds"] >= document["started_to_completion_seconds"] >= 0


def test_it_accepts_json_bodies_with_arguments_as_text_or_as_an_array(client):
    as_text = {
        "job_id": "json-text",
        "arguments": '[1, {"a": "b"}]',
        "job_class": "W",
        "queue": "q",
        "at": T0,
    }
    as_array = {**as_text, "job_id": "json-array", "arguments": [1, {"a": "b"}]}

    assert assert_created(client.post("/api/v1/jobs", json=as_text))["arguments"] == [1, {"a": "b"}]
    assert assert_created(client.post("/api/v1/jobs", json=as_array))["arguments"] == [1, {"a": "b"}]

    report = {"arguments": [1, {"a": "b"}], "job_class": "W", "queue": "q"}
    for jid in ("json-text", "json-array"):
        response = client.post(f"/api/v1/jobs/{jid}/started", json={**report, "at": T0 + 1})
        assert assert_created(response, 200)["status"] == "started"
        response = client.post(
            f"/api/v1/jobs/{jid}/complete",
            content=json.dumps({**report, "at": T0 + 3}),
            headers={"content-type": "application/json; charset=utf-8"},
        )
        document = assert_created(response, 200)
        assert document["status"] == "complete"
        assert document["queued_to_completion_seconds"] == 3.0
        assert document["started_to_completion_seconds"] == 2.0


def test_it_defaults_the_queue_and_ignores_unknown_fields(client):
    response = client.post(
        "/api/v1/jobs",
        data={"job_id": "j", "arguments": "[]", "job_class": "W", "retry": "true", "bid": "x"},
    )
    document = assert_created(response)
    assert document["queue"] == "default"
    assert document["arguments"] == []


def test_it_keeps_the_class_queue_and_arguments_of_the_first_report(client):
    queued(client, "first", arguments=[1], job_class="FirstWorker", queue="mail", at=T0)
    document = assert_created(
        started(client, "first", arguments=[2], job_class="OtherWorker", queue="other", at=T0 + 1), 200
    )
    assert (document["job_class"], document["queue"], document["arguments"]) == ("FirstWorker", "mail", [1])


# --- event times and arrival order ----------------------------------------------------------


@pytest.mark.parametrize("send", [started, complete], ids=["started", "complete"])
def test_it_creates_the_job_when_a_report_arrives_for_an_unknown_jid(client, send):
    document = assert_created(send(client, "orphan", arguments=["x"], job_class="W", queue="low", at=T0))

    assert document["jid"] == "orphan"
    assert (document["job_class"], document["queue"], document["arguments"]) == ("W", "low", ["x"])
    assert document["queued_at"] is None
    if send is started:
        assert (document["status"], document["started_at"], document["attempts"]) == ("started", iso(T0), 1)
    else:
        assert (document["status"], document["completed_at"], document["attempts"]) == (
            "complete",
            iso(T0),
            0,
        )
    assert events_of(job(client, "orphan")) == [(document["status"], iso(T0))]


def test_it_uses_at_as_the_event_time(client):
    queued(client, "timed", at=T0 + 0.25)
    started(client, "timed", at=T0 + 2.5)
    complete(client, "timed", at=T0 + 10)

    document = job(client, "timed")
    assert document["queued_at"] == "2023-11-14T22:13:20.250000+00:00"
    assert document["started_at"] == "2023-11-14T22:13:22.500000+00:00"
    assert document["completed_at"] == "2023-11-14T22:13:30+00:00"
    assert document["queued_to_completion_seconds"] == 9.75
    assert document["started_to_completion_seconds"] == 7.5
    assert events_of(document) == [
        ("queued", iso(T0 + 0.25)),
        ("started", iso(T0 + 2.5)),
        ("complete", iso(T0 + 10)),
    ]


def test_it_keeps_a_job_complete_when_complete_arrives_before_started(client):
    assert assert_created(complete(client, "racy", at=T0 + 5))["status"] == "complete"
    assert assert_created(started(client, "racy", at=T0 + 1), 200)["status"] == "complete"
    document = assert_created(queued(client, "racy", at=T0), 200)

    assert document["status"] == "complete"
    assert document["attempts"] == 1
    assert (document["queued_at"], document["started_at"], document["completed_at"]) == (
        iso(T0),
        iso(T0 + 1),
        iso(T0 + 5),
    )
    assert document["queued_to_completion_seconds"] == 5.0
    assert document["started_to_completion_seconds"] == 4.0
    assert [event for event, _ in events_of(job(client, "racy"))] == ["queued", "started", "complete"]


def test_it_keeps_a_job_started_when_started_arrives_before_queued(client):
    assert assert_created(started(client, "early", at=T0 + 3))["status"] == "started"
    document = assert_created(queued(client, "early", at=T0), 200)

    assert document["status"] == "started"
    assert (document["queued_at"], document["started_at"], document["attempts"]) == (iso(T0), iso(T0 + 3), 1)


@pytest.mark.parametrize("late_at", [T0 - 60, T0 + 30], ids=["earlier", "later-clock-skew"])
def test_it_never_moves_a_job_back_on_a_late_queued(client, late_at):
    started(client, "running", at=T0 + 1)
    started(client, "done", at=T0 + 1)
    complete(client, "done", at=T0 + 2)

    assert assert_created(queued(client, "running", at=late_at), 200)["status"] == "started"
    assert assert_created(queued(client, "done", at=late_at), 200)["status"] == "complete"
    assert job(client, "running")["queued_at"] == iso(late_at)
    assert job(client, "done")["completed_at"] == iso(T0 + 2)


def test_it_counts_a_sidekiq_retry_as_a_second_attempt(client):
    queued(client, "retry", at=T0)
    started(client, "retry", at=T0 + 1)
    started(client, "retry", at=T0 + 5)
    document = assert_created(complete(client, "retry", at=T0 + 9), 200)

    assert document["status"] == "complete"
    assert document["attempts"] == 2
    assert document["started_at"] == iso(T0 + 5)
    assert document["queued_to_completion_seconds"] == 9.0
    assert document["started_to_completion_seconds"] == 4.0
    assert [event for event, _ in events_of(job(client, "retry"))] == [
        "queued",
        "started",
        "started",
        "complete",
    ]


def test_it_makes_a_job_uncompleted_again_when_it_starts_after_its_completion(client):
    queued(client, "rerun", at=T0)
    started(client, "rerun", at=T0 + 1)
    complete(client, "rerun", at=T0 + 2)
    document = assert_created(started(client, "rerun", at=T0 + 60), 200)

    assert document["status"] == "started"
    assert document["attempts"] == 2
    assert (document["started_at"], document["completed_at"]) == (iso(T0 + 60), iso(T0 + 2))
    assert document["queued_to_completion_seconds"] is None
    assert document["started_to_completion_seconds"] is None
    uncompleted = client.get("/api/v1/jobs", params={"status": "uncompleted"}).json()["data"]
    assert [entry["jid"] for entry in uncompleted] == ["rerun"]


def test_it_ignores_the_same_report_sent_twice(client):
    for send, at in ((queued, T0), (started, T0 + 1.5), (complete, T0 + 4)):
        send(client, "twice", at=at)
    before = job(client, "twice")

    for send, at in ((complete, T0 + 4), (started, T0 + 1.5), (queued, T0)):
        answer = assert_created(send(client, "twice", at=at), 200)
        assert answer == {key: value for key, value in before.items() if key != "history"}

    assert job(client, "twice") == before
    assert len(before["history"]) == 3
    assert before["attempts"] == 1


# --- bad input: a 4xx naming the field, and nothing stored ----------------------------------


def form_post(path: str, **overrides: Any):
    body = {"job_id": "bad-1", **fields(), **overrides}
    return {"path": path, "data": {name: value for name, value in body.items() if value is not None}}


def json_post(path: str, **overrides: Any):
    body = {"job_id": "bad-1", "arguments": ARGS, "job_class": "W", "queue": "q", **overrides}
    return {"path": path, "json": body}


def raw_post(path: str, content: bytes, content_type: str):
    return {"path": path, "content": content, "headers": {"content-type": content_type}}


FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
QUEUED = "/api/v1/jobs"
STARTED = "/api/v1/jobs/bad-1/started"
LONG_PATH = f"/api/v1/jobs/{'j' * 129}/complete"
LONG_ARGUMENTS = ["a" * 65536]
NAN_AT = b'{"arguments":"[]","job_class":"W","at":NaN}'

# name, request, expected status, the field the error must name (None: no field to name)
BAD_REPORTS = [
    ("missing job_id", form_post(QUEUED, job_id=None), 422, ("body", "job_id")),
    ("job_id with a space", form_post(QUEUED, job_id="bad 1"), 422, ("body", "job_id")),
    ("job_id of 129 characters", form_post(QUEUED, job_id="j" * 129), 422, ("body", "job_id")),
    ("empty job_id", form_post(QUEUED, job_id=""), 422, ("body", "job_id")),
    ("missing arguments", form_post(QUEUED, arguments=None), 422, ("body", "arguments")),
    ("arguments not JSON", form_post(QUEUED, arguments="[1, 'a'"), 422, ("body", "arguments")),
    ("arguments a JSON object", form_post(QUEUED, arguments='{"a": 1}'), 422, ("body", "arguments")),
    ("arguments a JSON string", form_post(STARTED, arguments='"[1]"'), 422, ("body", "arguments")),
    ("JSON arguments a number", json_post(QUEUED, arguments=5), 422, ("body", "arguments")),
    ("JSON arguments an object", json_post(STARTED, arguments={"a": 1}), 422, ("body", "arguments")),
    ("missing job_class", form_post(QUEUED, job_class=None), 422, ("body", "job_class")),
    ("empty job_class", form_post(STARTED, job_class=""), 422, ("body", "job_class")),
    ("job_class too long", json_post(QUEUED, job_class="W" * 256), 422, ("body", "job_class")),
    ("empty queue", form_post(QUEUED, queue=""), 422, ("body", "queue")),
    ("at negative", form_post(QUEUED, at="-1"), 422, ("body", "at")),
    ("at NaN", form_post(STARTED, at="nan"), 422, ("body", "at")),
    ("at infinite", form_post(QUEUED, at="inf"), 422, ("body", "at")),
    ("at in milliseconds", form_post(QUEUED, at="1.7e12"), 422, ("body", "at")),
    ("JSON at in milliseconds", json_post(QUEUED, at=1_700_000_000_000), 422, ("body", "at")),
    ("at not a number", form_post(QUEUED, at="yesterday"), 422, ("body", "at")),
    ("path job_id with a space", form_post("/api/v1/jobs/bad%201/started"), 422, ("path", "job_id")),
    ("path job_id of 129 characters", form_post(LONG_PATH), 422, ("path", "job_id")),
    ("raw non-UTF-8 form body", raw_post(QUEUED, b"job_id=bad-1&job_class=W\xff", FORM), 400, None),
    ("escaped non-UTF-8 form body", raw_post(STARTED, b"arguments=%5B%5D&job_class=%FF", FORM), 400, None),
    ("JSON body a list", {"path": QUEUED, "json": [{"job_id": "bad-1"}]}, 422, ("body",)),
    ("JSON body not JSON", raw_post(QUEUED, b'{"job_id": "bad-1",', JSON), 400, None),
    ("JSON body with NaN", raw_post(STARTED, NAN_AT, JSON), 400, None),
    ("text/plain body", raw_post(QUEUED, b"job_id=bad-1&arguments=[]&job_class=W", "text/plain"), 415, None),
    ("body over 1 MiB", raw_post(QUEUED, b"job_id=bad-1&x=" + b"a" * (1024 * 1024), FORM), 413, None),
    (
        "arguments over 64 KiB",
        form_post(QUEUED, arguments=json.dumps(LONG_ARGUMENTS)),
        422,
        ("body", "arguments"),
    ),
    ("JSON arguments over 64 KiB", json_post(STARTED, arguments=LONG_ARGUMENTS), 422, ("body", "arguments")),
]


@pytest.mark.parametrize(
    ("name", "request_", "status", "field"), BAD_REPORTS, ids=[c[0] for c in BAD_REPORTS]
)
def test_it_refuses_bad_input_naming_the_field_and_stores_nothing(client, name, request_, status, field):
    request_ = dict(request_)
    response = client.post(request_.pop("path"), **request_)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    if field is not None:
        assert field[-1] in body["error"]
        assert [list(field)] == [error["loc"] for error in body["detail"]]
    else:
        assert isinstance(body["detail"], str)
    assert total(client) == 0
    assert client.get("/api/v1/jobs/bad-1/history").status_code == 404


def test_it_refuses_a_chunked_body_over_1_mib(client):
    def chunks():
        yield b"job_id=bad-1&arguments=%5B%5D&job_class=W&x="
        for _ in range(17):
            yield b"a" * 65536

    response = client.post("/api/v1/jobs", content=chunks(), headers={"content-type": FORM})
    assert response.status_code == 413
    assert total(client) == 0


def test_it_accepts_arguments_of_exactly_64_kib(client):
    arguments = ["a" * (65536 - 4)]  # ["…"] is 4 characters more
    assert len(json.dumps(arguments, separators=(",", ":"))) == 65536

    assert assert_created(queued(client, "big", arguments=arguments))["arguments"] == arguments
    assert queued(client, "bigger", arguments=["a" * (65536 - 3)]).status_code == 422


def test_it_measures_the_arguments_limit_in_utf8_bytes(client):
    arguments = ["é" * 40_000]  # 40,004 characters, 80,004 bytes of UTF-8
    response = client.post(
        "/api/v1/jobs",
        data={"job_id": "wide", **fields(), "arguments": json.dumps(arguments, ensure_ascii=False)},
    )
    assert response.status_code == 422
    assert total(client) == 0


def test_it_keeps_big_integer_arguments_exactly(client, engine):
    response = queued(client, "bignum", arguments=[12345678901234567890123, -(2**64)])
    assert response.status_code == 201
    assert response.json()["arguments"] == [12345678901234567890123, -(2**64)]
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT arguments FROM jobs WHERE jid = 'bignum'")).scalar_one()
    assert "12345678901234567890123" in stored


def test_it_keeps_big_integers_exactly_in_an_arguments_array_of_a_json_body(client):
    body = '{"job_id": "big-array", "job_class": "W", "arguments": [12345678901234567890123, 1.5, "x"]}'

    response = client.post("/api/v1/jobs", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 201, response.text
    assert response.json()["arguments"] == [12345678901234567890123, 1.5, "x"]


@pytest.mark.parametrize("field", ["job_class", "queue"])
def test_it_refuses_a_nul_character_in_job_class_or_queue(client, field):
    response = client.post(
        "/api/v1/jobs", json={"job_id": "nul", "arguments": [], "job_class": "W", field: "W\x00"}
    )
    assert response.status_code == 422, response.text
    assert field in response.json()["error"]
    assert total(client) == 0


# --- arguments stored as sent ---------------------------------------------------------------


def stored_arguments(engine, jid: str) -> str:
    with engine.connect() as connection:
        return connection.execute(
            text("SELECT arguments FROM jobs WHERE jid = :jid"), {"jid": jid}
        ).scalar_one()


def test_it_round_trips_unicode_arguments(client, engine):
    arguments = ["Zoë café", "東京", "😀 🎉", {"naïve": "ß"}, "\u2028"]
    response = client.post(
        "/api/v1/jobs",
        data={"job_id": "uni-form", **fields(), "arguments": json.dumps(arguments, ensure_ascii=False)},
    )
    assert assert_created(response)["arguments"] == arguments
    # Escaped (\u00e9) or raw, the same arguments are stored the same way.
    assert assert_created(queued(client, "uni-escaped", arguments=arguments))["arguments"] == arguments
    json_body = {"job_id": "uni-json", "arguments": arguments, "job_class": "W"}
    assert assert_created(client.post("/api/v1/jobs", json=json_body))["arguments"] == arguments

    for jid in ("uni-form", "uni-escaped", "uni-json"):
        assert job(client, jid)["arguments"] == arguments
        assert stored_arguments(engine, jid) == json.dumps(
            arguments, ensure_ascii=False, separators=(",", ":")
        )


def test_it_decodes_form_fields_holding_plus_ampersand_equals_and_percent(client):
    arguments = ["a+b c&d=e", "100% _x_", 'say "hi" \\ bye', "line\nbreak"]
    assert assert_created(queued(client, "chars", arguments=arguments))["arguments"] == arguments
    assert job(client, "chars")["arguments"] == arguments


def test_it_stores_a_script_tag_verbatim(client, engine):
    arguments = ["<script>alert('x')</script>", "&lt;b&gt;"]
    response = queued(client, "xss", arguments=arguments)

    assert assert_created(response)["arguments"] == arguments
    assert "<script>alert('x')</script>" in response.text
    assert stored_arguments(engine, "xss") == """["<script>alert('x')</script>","&lt;b&gt;"]"""
    fetched = client.get("/api/v1/jobs/xss")
    assert fetched.headers["content-type"] == "application/json"
    assert fetched.json()["arguments"] == arguments


def test_a_report_about_a_restarted_job_joins_its_history_and_never_brings_it_back(client, redis_client):
    assert_created(queued(client, "orig", at=T0))
    started(client, "orig", at=T0 + 1)
    restart = client.post("/api/v1/jobs/restart")
    assert restart.status_code == 200, restart.text
    (restarted,) = restart.json()["restarted"]
    assert restarted["jid"] == "orig"

    late = complete(client, "orig", at=T0 + 30)

    assert late.status_code == 200
    assert late.json()["status"] == "restarted"
    assert client.get("/api/v1/jobs/orig").status_code == 404
    history = client.get("/api/v1/jobs/orig/history").json()["history"]
    # In event-time order: the late complete happened (at T0 + 30) before the restart (now).
    assert [entry["event"] for entry in history] == ["queued", "started", "complete", "restarted"]
    assert history[-1]["detail"] == {"new_jid": restarted["new_jid"]}
    assert job(client, restarted["new_jid"])["restarted_from"] == "orig"
    assert total(client) == 1


def test_an_at_that_is_a_boolean_is_refused(client):
    response = client.post(
        "/api/v1/jobs", json={"job_id": "b", "arguments": [], "job_class": "K", "at": True}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "at"]
    assert total(client) == 0


def test_every_client_error_names_what_is_wrong_in_the_same_shape(client):
    unsupported = client.post("/api/v1/jobs", content=b"x", headers={"content-type": "text/plain"})
    invalid = client.post("/api/v1/jobs", data={"job_id": "x", "arguments": "[", "job_class": "K"})

    assert unsupported.status_code == 415
    assert "application/json" in unsupported.json()["error"]
    assert invalid.status_code == 422
    assert invalid.json()["error"] == "invalid arguments"
    assert "input" not in invalid.json()["detail"][0]


WORKER = {"identity": "vm:4242:0123456789ab", "hostname": "vm", "pid": 4242, "thread": "owx1k"}


def test_a_started_report_records_its_worker_from_form_fields_or_json(client):
    flat = {f"worker_{key}": str(value) for key, value in WORKER.items()}
    from_form = client.post("/api/v1/jobs/f1/started", data={**fields(), **flat})
    from_json = client.post(
        "/api/v1/jobs/j1/started", json={"arguments": ARGS, "job_class": "HardWorker", "worker": WORKER}
    )

    assert from_form.json()["worker"] == WORKER
    assert from_json.json()["worker"] == WORKER
    assert job(client, "f1")["history"][0]["detail"] == {"worker": WORKER}


def test_the_worker_is_that_of_the_latest_start_whatever_the_arrival_order(client):
    later = {**WORKER, "pid": 5555, "identity": "vm:5555:ba9876543210"}
    client.post(
        "/api/v1/jobs/w/started", json={"arguments": ARGS, "job_class": "K", "at": T0 + 20, "worker": later}
    )
    client.post(
        "/api/v1/jobs/w/started", json={"arguments": ARGS, "job_class": "K", "at": T0 + 10, "worker": WORKER}
    )

    assert job(client, "w")["worker"] == later
    assert job(client, "w")["attempts"] == 2


def test_a_failed_report_keeps_the_job_uncompleted_and_puts_the_error_in_its_history(client):
    started(client, "boom", at=T0)
    response = client.post(
        "/api/v1/jobs/boom/failed",
        data={**fields(), "at": str(T0 + 1), "error_class": "RuntimeError", "error_message": "no such order"},
    )

    assert response.status_code == 200
    assert response.json()["status"] == "started"
    history = job(client, "boom")["history"]
    assert [entry["event"] for entry in history] == ["started", "failed"]
    assert history[1]["detail"] == {"error": {"class": "RuntimeError", "message": "no such order"}}
    listed = client.get("/api/v1/jobs", params={"status": "uncompleted"}).json()["data"]
    assert [entry["jid"] for entry in listed] == ["boom"]


def test_an_error_message_is_cut_to_10000_characters_rather_than_refused(client):
    response = client.post(
        "/api/v1/jobs/long/failed",
        json={"arguments": ARGS, "job_class": "K", "error": {"class": "E", "message": "x" * 20_000}},
    )

    assert response.status_code == 201
    (failed,) = job(client, "long")["history"]
    assert len(failed["detail"]["error"]["message"]) == 10_000


def test_a_worker_sent_with_another_report_than_started_is_ignored(client):
    response = client.post(
        "/api/v1/jobs/c/complete", json={"arguments": ARGS, "job_class": "K", "worker": WORKER}
    )

    assert response.json()["worker"] is None
    assert job(client, "c")["history"][0]["detail"] is None
