"""Property: any stream of reports through the HTTP API, in any order, with duplicates and bad
reports mixed in, gets no 5xx, stores exactly the valid reports, and keeps the store invariants.

Runs in-process (FastAPI's TestClient, lifespan and group-commit writer included) on SQLite and
on PostgreSQL. Each example uses jids of its own, so the ledger grows across examples and the
invariants are checked over all of it every time.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings

from sidekiq_supervisor.domain.model import micros_from_seconds
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from tests.conftest import redis_test_url
from tests.reliability.ledger_checks import invariant_violations, missing_reports, read_ledger
from tests.reliability.load import Sent
from tests.reliability.streams import BAD_FIELDS, NULL, Item, Request, Stream, streams

# Reliability: many random report streams per test (seconds each).
pytestmark = pytest.mark.slow

EXAMPLES = 60
STORED = {200, 201}


def _jid(prefix: str, item: Item) -> str:
    if item.bad_jid is not None:
        return item.bad_jid
    return f"{prefix}-{'bad-' if item.bad else ''}{item.job}"


def _fields(prefix: str, item: Item) -> dict[str, Any]:
    fields: dict[str, Any] = {"arguments": '[1, "x"]', "job_class": "StreamWorker", "queue": "default"}
    if item.at is not None:
        fields["at"] = None if item.at == NULL else item.at
    if item.kind == "started":
        fields["worker"] = {"identity": "host:1:abc", "pid": 1}
    for key, value in BAD_FIELDS.get(item.bad or "", {}).items():
        if value is None:
            fields.pop(key, None)
        else:
            fields[key] = value
    return fields


def _as_form(fields: dict[str, Any]) -> dict[str, str]:
    form = {}
    for key, value in fields.items():
        if value is None:
            continue  # a form cannot say null: the field is left out
        if isinstance(value, dict):  # form bodies flatten the worker and the error
            form.update({f"{key}_{name}": str(inner) for name, inner in value.items()})
        else:
            form[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return form


def _send_single(client: TestClient, prefix: str, request: Request) -> int:
    (item,) = request.items
    fields, jid = _fields(prefix, item), _jid(prefix, item)
    if item.kind == "queued":
        path, fields = "/api/v1/jobs", {**fields, "job_id": jid}
    else:
        path = f"/api/v1/jobs/{jid}/{item.kind}"
    if request.how == "form":
        return client.post(path, data=_as_form(fields)).status_code
    return client.post(path, json=fields).status_code


def _send_batch(client: TestClient, prefix: str, request: Request) -> list[int]:
    body = [{"event": i.kind, "job_id": _jid(prefix, i), **_fields(prefix, i)} for i in request.items]
    response = client.post("/api/v1/events", json={"events": body})
    assert response.status_code == 200, response.text
    return [result["status"] for result in response.json()["results"]]


def _sent(prefix: str, item: Item) -> Sent:
    at = None if item.at is None or isinstance(item.at, str) else micros_from_seconds(item.at)
    return Sent(_jid(prefix, item), item.kind, at)


def _check_stream(client: TestClient, ledger_url: str, stream: Stream) -> None:
    prefix = uuid.uuid4().hex[:10]
    acknowledged: list[Sent] = []
    for request in stream.requests:
        statuses = (
            _send_batch(client, prefix, request)
            if request.how == "batch"
            else [_send_single(client, prefix, request)]
        )
        for item, status in zip(request.items, statuses, strict=True):
            assert status < 500, (item, status)
            if item.bad:
                assert 400 <= status < 500, (item, status)
            else:
                assert status in STORED, (item, status)
                acknowledged.append(_sent(prefix, item))
    for content_type, body in stream.garbage:
        status = client.post("/api/v1/jobs", content=body, headers={"Content-Type": content_type}).status_code
        assert 400 <= status < 500, (body, status)
        response = client.post("/api/v1/events", content=body, headers={"Content-Type": content_type})
        # A batch whose items are all bad is refused item by item, inside a 200.
        refused_items = response.status_code == 200 and response.json()["stored"] == 0
        assert 400 <= response.status_code < 500 or refused_items, (body, response.status_code)

    snapshot = read_ledger(ledger_url)
    assert missing_reports(acknowledged, snapshot) == []
    assert invariant_violations(snapshot) == []
    assert [jid for jid, *_ in snapshot.jobs if jid.startswith(f"{prefix}-bad")] == []
    assert [e for e in snapshot.events if e[1].startswith(f"{prefix}-bad")] == []

    # The API tells what the store holds, each history in event-time order.
    stored = {jid: status for jid, status, *_ in snapshot.jobs if jid.startswith(prefix)}
    for jid, status in stored.items():
        document = client.get(f"/api/v1/jobs/{jid}").json()
        assert document["status"] == status
        times = [datetime.fromisoformat(entry["at"]) for entry in document["history"]]
        assert times == sorted(times)
        assert len(times) == sum(1 for e in snapshot.events if e[1] == jid)


@pytest.mark.timeout(90)
def test_random_report_streams_keep_the_store_consistent(ledger_url: str) -> None:
    app = create_app(Settings(database_url=ledger_url, redis_url=redis_test_url()))
    with TestClient(app) as client:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(stream=streams)
        def check(stream: Stream) -> None:
            _check_stream(client, ledger_url, stream)

        check()
