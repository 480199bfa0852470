"""A restart pushes the job as it was pushed: reported through the API, restarted into the real Redis.

Each case reports a job the way a client does (the gem's JSON batch, or the seed's form), restarts
it through ``POST /api/v1/jobs/restart`` and reads the payload Sidekiq would fetch from its queue.
No Sidekiq process runs, so every uncompleted job is restartable ("unknown" or "orphaned").
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.domain.payload import MAX_ARGUMENTS_DEPTH
from sidekiq_supervisor.services.job_payloads import PayloadSeal
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.store.engine import make_engine, write_transaction
from sidekiq_supervisor.store.writer import write_reports
from sidekiq_supervisor.web.app import create_app
from tests.conftest import redis_test_url

WRAPPER = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
KEY = PayloadSeal.new_key()
BIG = 123456789012345678901234567890


@pytest.fixture
def service(ledger_url, redis_client):
    """The app with a secret key, on the test's ledger and Redis."""
    settings = Settings(database_url=ledger_url, redis_url=redis_test_url(), secret_key=KEY)
    with TestClient(create_app(settings)) as client:
        yield client


def gem_report(client, jid, event, arguments, payload, job_class="InvoiceJob", queue="billing"):
    item = {"event": event, "job_id": jid, "job_class": job_class, "queue": queue, "arguments": arguments}
    if payload is not None:
        item["payload"] = payload
    response = client.post("/api/v1/events", json={"events": [item]})
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == 0, response.text


def seed_report(client, jid, event, arguments_text, job_class, queue="default"):
    fields = {"arguments": arguments_text, "job_class": job_class, "queue": queue}
    path = "/api/v1/jobs" if event == "queued" else f"/api/v1/jobs/{jid}/{event}"
    if event == "queued":
        fields["job_id"] = jid
    response = client.post(path, data=fields)
    assert response.status_code in (200, 201), response.text
    return response


def restart(client, q=None) -> dict:
    response = client.post("/api/v1/jobs/restart", params={"q": q} if q else {})
    assert response.status_code == 200, response.text
    return response.json()


def pushed(redis_client, queue) -> list[dict]:
    return [json.loads(raw) for raw in redis_client.lrange(f"queue:{queue}", 0, -1)]


def test_a_gem_reported_activejob_job_is_pushed_with_its_wrapper_and_every_payload_key(service, redis_client):
    job_hash = {"job_class": "InvoiceJob", "job_id": "aj-1", "arguments": [42], "executions": 0}
    payload = {
        "class": WRAPPER,
        "wrapped": "InvoiceJob",
        "retry": False,
        "retry_for": 3600,
        "backtrace": 5,
        "dead": False,
        "tags": ["billing", "vip"],
        "tenant": {"id": 9, "region": "eu"},
        # Per-run keys a client may send: a restart writes its own.
        "jid": "old-jid",
        "enqueued_at": 1.5,
        "created_at": 1.5,
        "retry_count": 3,
        "error_message": "boom",
        "failed_at": 2.5,
    }
    for event in ("queued", "started"):
        gem_report(service, "aj-job", event, [job_hash], payload)

    listed = service.get("/api/v1/jobs", params={"status": "started"}).json()["data"]
    assert [row["job_class"] for row in listed] == ["InvoiceJob"]  # what people think of
    report = restart(service)

    ((original, new_jid),) = [(row["jid"], row["new_jid"]) for row in report["restarted"]]
    assert original == "aj-job"
    (job,) = pushed(redis_client, "billing")
    assert job["class"] == WRAPPER
    assert job["wrapped"] == "InvoiceJob"
    assert job["args"] == [job_hash]
    assert (job["retry"], job["retry_for"], job["backtrace"], job["dead"]) == (False, 3600, 5, False)
    assert job["tags"] == ["billing", "vip"]
    assert job["tenant"] == {"id": 9, "region": "eu"}
    assert job["jid"] == new_jid
    assert job["queue"] == "billing"
    assert job["created_at"] == job["enqueued_at"] > 1.5
    assert not {"retry_count", "error_message", "failed_at"} & set(job)
    copy = service.get(f"/api/v1/jobs/{new_jid}").json()
    assert (copy["job_class"], copy["restarted_from"]) == ("InvoiceJob", "aj-job")


def test_a_seed_reported_activejob_job_shows_its_job_class_and_is_pushed_as_its_wrapper(
    service, redis_client
):
    arguments = json.dumps([{"job_class": "SignupMailerJob", "job_id": "aj-2", "arguments": [7]}])
    seed_report(service, "seed-aj", "queued", arguments, WRAPPER)
    seed_report(service, "seed-aj", "started", arguments, WRAPPER)

    assert service.get("/api/v1/jobs/seed-aj").json()["job_class"] == "SignupMailerJob"
    restart(service)

    (job,) = pushed(redis_client, "default")
    assert (job["class"], job["args"], job["retry"]) == (WRAPPER, json.loads(arguments), True)


def test_a_plain_seed_job_is_pushed_with_sidekiqs_defaults(service, redis_client):
    seed_report(service, "seed-plain", "started", '[1,"alice@example.com"]', "HardWorker", queue="mail")

    restart(service)

    (job,) = pushed(redis_client, "mail")
    assert set(job) == {"class", "args", "queue", "retry", "jid", "created_at", "enqueued_at"}
    assert (job["class"], job["args"], job["queue"], job["retry"]) == (
        "HardWorker",
        [1, "alice@example.com"],
        "mail",
        True,
    )


def test_secrets_are_masked_for_every_reader_and_pushed_unmasked_to_the_job(
    service, redis_client, ledger_url
):
    arguments = [{"user_id": 7, "reset_token": "abc123"}]
    gem_report(
        service, "secret-job", "started", arguments, {"class": "ResetWorker"}, "ResetWorker", "default"
    )
    seed_report(service, "secret-seed", "started", json.dumps(arguments), "ResetWorker")

    for jid in ("secret-job", "secret-seed"):
        shown = service.get(f"/api/v1/jobs/{jid}").json()["arguments"]
        assert shown == [{"user_id": 7, "reset_token": "[REDACTED]"}]
        assert "abc123" not in service.get(f"/jobs/{jid}").text
    assert "abc123" not in service.get("/api/v1/jobs").text
    assert "abc123" not in service.get("/restart").text
    engine = make_engine(ledger_url)
    with engine.connect() as connection:
        for table in ("jobs", "job_events", "job_payloads"):
            rows = connection.execute(text(f"SELECT * FROM {table}")).all()
            assert "abc123" not in repr(rows), table  # encrypted at rest
    engine.dispose()

    report = restart(service)

    assert sorted(row["jid"] for row in report["restarted"]) == ["secret-job", "secret-seed"]
    assert [job["args"] for job in pushed(redis_client, "default")] == [arguments, arguments]
    for row in report["restarted"]:
        copy = service.get(f"/api/v1/jobs/{row['new_jid']}").json()
        assert copy["arguments"] == [{"user_id": 7, "reset_token": "[REDACTED]"}]


def test_without_a_key_a_masked_job_is_skipped_with_how_to_fix_it_and_the_others_restart(
    ledger_url, redis_client
):
    settings = Settings(database_url=ledger_url, redis_url=redis_test_url())
    with TestClient(create_app(settings)) as client:
        seed_report(client, "masked", "started", '[{"password":"hunter2"}]', "LoginWorker")
        seed_report(client, "plain", "started", "[1]", "LoginWorker")

        preview = client.post("/api/v1/jobs/restart", params={"dry_run": True}).json()
        report = restart(client)

    assert [row["jid"] for row in preview["skipped"]] == ["masked"]  # the preview says so too

    assert [row["jid"] for row in report["restarted"]] == ["plain"]
    ((skipped, reason),) = [(row["jid"], row["reason"]) for row in report["skipped"]]
    assert skipped == "masked"
    assert "SUPERVISOR_SECRET_KEY" in reason
    assert [job["args"] for job in pushed(redis_client, "default")] == [[1]]  # never the mark


def test_a_rotated_key_still_opens_what_the_old_one_sealed(ledger_url, redis_client):
    old = Settings(database_url=ledger_url, redis_url=redis_test_url(), secret_key=KEY)
    with TestClient(create_app(old)) as client:
        seed_report(client, "rotated", "started", '[{"api_key":"k-1"}]', "SyncWorker")
    rotated = Settings(
        database_url=ledger_url, redis_url=redis_test_url(), secret_key=f"{PayloadSeal.new_key()},{KEY}"
    )
    with TestClient(create_app(rotated)) as client:
        restart(client)
    stranger = Settings(database_url=ledger_url, redis_url=redis_test_url(), secret_key=PayloadSeal.new_key())
    with TestClient(create_app(stranger)) as client:
        seed_report(client, "lost-key", "started", '[{"api_key":"k-2"}]', "SyncWorker")
    with TestClient(create_app(old)) as client:
        report = restart(client)

    assert [job["args"] for job in pushed(redis_client, "default")] == [[{"api_key": "k-1"}]]
    assert [row["jid"] for row in report["skipped"]] == ["lost-key"]
    assert "no longer in SUPERVISOR_SECRET_KEY" in report["skipped"][0]["reason"]


def test_integers_beyond_64_bits_are_exact_in_the_ledger_the_pages_and_the_push(service, redis_client):
    seed_report(service, "big", "started", f"[{BIG}]", "LedgerWorker")

    assert str(BIG) in service.get("/api/v1/jobs/big").text
    assert str(BIG) in service.get("/jobs/big").text
    assert service.get("/jobs").status_code == 200
    restart(service)

    (raw,) = redis_client.lrange("queue:default", 0, -1)
    assert f'"args":[{BIG}]'.encode() in raw


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def test_the_deepest_arguments_sidekiq_can_push_are_stored_shown_and_pushed_exactly(service, redis_client):
    deepest = nested(MAX_ARGUMENTS_DEPTH)
    seed_report(service, "deep", "started", deepest, "DeepWorker")
    gem_report(service, "deep-gem", "started", json.loads(deepest), {"class": "DeepWorker", "meta": {"a": 1}})

    for path in ("/jobs", "/jobs/deep", "/restart", "/api/v1/jobs", "/api/v1/jobs/deep", "/"):
        assert service.get(path).status_code == 200, path
    report = restart(service)

    assert len(report["restarted"]) == 2
    for raw in redis_client.lrange("queue:default", 0, -1):
        assert f'"args":{deepest}'.encode() in raw


@pytest.mark.parametrize("depth", [MAX_ARGUMENTS_DEPTH + 1, 255, 1000, 5000])
def test_deeper_arguments_are_refused_at_the_door_naming_the_limit(service, depth):
    arguments = nested(depth)

    form = service.post("/api/v1/jobs", data={"job_id": "too-deep", "arguments": arguments, "job_class": "K"})
    batch = service.post(
        "/api/v1/events",
        content=f'{{"events":[{{"event":"started","job_id":"too-deep","job_class":"K","arguments":{arguments}}}]}}',
        headers={"content-type": "application/json"},
    )

    assert form.status_code == 422
    (error,) = form.json()["detail"]
    assert error["loc"] == ["body", "arguments"]
    assert f"deeper than {MAX_ARGUMENTS_DEPTH} levels" in error["msg"]
    assert batch.status_code in (200, 400)
    if batch.status_code == 200:
        (refused,) = batch.json()["results"]
        assert refused["status"] == 422
        assert f"deeper than {MAX_ARGUMENTS_DEPTH} levels" in refused["detail"][0]["msg"]
    else:
        assert "nests too deep" in batch.json()["detail"]
    assert service.get("/api/v1/jobs/too-deep").status_code == 404


def test_a_secret_key_at_any_accepted_depth_is_masked_without_error(service, redis_client):
    value: object = {"password": "hunter2"}
    for _ in range(MAX_ARGUMENTS_DEPTH - 2):
        value = [value]
    arguments = json.dumps([value])

    seed_report(service, "deep-secret", "started", arguments, "DeepWorker")

    assert "hunter2" not in service.get("/api/v1/jobs/deep-secret").text
    assert service.get("/jobs/deep-secret").status_code == 200
    restart(service)
    (job,) = pushed(redis_client, "default")
    assert job["args"] == [value]


def test_a_payload_that_is_not_an_object_or_too_deep_is_refused_naming_the_field(service):
    base = {"event": "queued", "job_id": "p", "job_class": "K", "arguments": []}
    deep: object = 1
    for _ in range(MAX_ARGUMENTS_DEPTH + 1):
        deep = [deep]
    bad = [[1, 2], "text", {"tags": deep}]

    response = service.post("/api/v1/events", json={"events": [{**base, "payload": value} for value in bad]})

    results = response.json()["results"]
    assert [result["status"] for result in results] == [422, 422, 422]
    assert all(result["detail"][0]["loc"][-1] == "payload" for result in results)


def started_jobs(client, count, queue="default"):
    for n in range(count):
        seed_report(client, f"lost-{queue}-{n:03d}", "started", f"[{n}]", "HardWorker", queue=queue)


def test_a_large_restart_answers_its_counts_and_the_first_of_each_kind(service, redis_client):
    started_jobs(service, 30)

    response = service.post("/api/v1/jobs/restart", params={"dry_run": True, "limit": 10})

    document = response.json()
    assert document["counts"] == {"restarted": 30, "skipped": 0}
    assert len(document["restarted"]) == 10
    assert document["truncated"] is True
    assert redis_client.keys("*") == []


def test_a_restart_streams_a_line_per_job_then_the_counts(service, redis_client):
    started_jobs(service, 5)

    with service.stream(
        "POST", "/api/v1/jobs/restart", headers={"Accept": "application/x-ndjson"}
    ) as response:
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]

    *jobs, summary = lines
    assert summary == {"done": True, "dry_run": False, "counts": {"restarted": 5, "skipped": 0}}
    assert sorted(line["jid"] for line in jobs) == [f"lost-default-{n:03d}" for n in range(5)]
    assert {line["new_jid"] for line in jobs} == {
        json.loads(raw)["jid"] for raw in redis_client.lrange("queue:default", 0, -1)
    }


def test_a_restart_stopped_midway_names_the_jobs_it_had_restarted_and_leaves_the_rest(service, redis_client):
    started_jobs(service, 1, queue="broken")  # the oldest: a restart walks newest first
    started_jobs(service, 2, queue="default")
    redis_client.set("queue:broken", "not a list")  # Sidekiq's Redis refuses the push into it

    failed = service.post("/api/v1/jobs/restart")
    streamed = service.post("/api/v1/jobs/restart", headers={"Accept": "application/x-ndjson"})

    assert failed.status_code == 503
    document = failed.json()
    assert "WRONGTYPE" in document["error"]
    assert sorted(row["jid"] for row in document["restarted"]) == ["lost-default-000", "lost-default-001"]
    assert document["counts"] == {"restarted": 2, "skipped": 0}
    assert redis_client.llen("queue:default") == 2
    assert service.get("/api/v1/jobs/lost-broken-000").json()["status"] == "started"  # left as it was
    assert not redis_client.exists(keys.restart_marker("lost-broken-000"))  # a re-run will push it
    (last,) = [json.loads(line) for line in streamed.text.splitlines()]
    assert "WRONGTYPE" in last["error"]


@pytest.mark.parametrize("depth", [MAX_ARGUMENTS_DEPTH + 1, 300, 900])
def test_arguments_stored_before_the_limit_never_break_a_page_a_list_or_a_restart(
    service, redis_client, engine, depth
):
    # Written straight into the ledger, as an older release accepted them.
    deep = Report(
        "legacy-deep", EventKind.STARTED, now_micros() - 10**9, "DeepWorker", "default", nested(depth)
    )
    with write_transaction(engine) as connection:
        write_reports(connection, [deep], now_micros())
    seed_report(service, "fine", "started", "[1]", "FineWorker")

    for path in ("/", "/jobs", "/jobs/legacy-deep", "/restart", "/api/v1/jobs", "/api/v1/jobs/legacy-deep"):
        assert service.get(path).status_code == 200, path
    report = restart(service)

    assert [row["jid"] for row in report["restarted"]] == ["fine"]
    ((jid, reason),) = [(row["jid"], row["reason"]) for row in report["skipped"]]
    assert jid == "legacy-deep"
    assert "more than Sidekiq can read" in reason
    assert [json.loads(raw)["class"] for raw in redis_client.lrange("queue:default", 0, -1)] == ["FineWorker"]
