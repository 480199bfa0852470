"""The seed's report routes answered by ``ReportFastPath``: same answers as the routes, same refusals.

A form body of declared length is stored by the fast path; a chunked body (no Content-Length)
takes the FastAPI route, so comparing the two compares the paths. Refusals are always worded by
the routes, with the body the fast path read replayed to them.
"""

from __future__ import annotations

from functools import partial
from typing import Any
from urllib.parse import urlencode

import pytest

from sidekiq_supervisor.web.api.report_fast_path import ReportFastPath
from tests.web.helpers import job, total
from tests.web.test_ingest_api import T0, fields

FORM = {"content-type": "application/x-www-form-urlencoded"}


def chunked(pairs: dict[str, str]) -> Any:
    """A form body without Content-Length, which the fast path leaves to the route."""
    return iter([urlencode(pairs).encode()])


def comparable(document: dict[str, Any]) -> dict[str, Any]:
    """The document without what differs between two jobs reported alike: jid and recording times."""
    history = [{**entry, "recorded_at": None} for entry in document.get("history", [])]
    return {key: value for key, value in document.items() if key != "jid"} | {"history": history}


def test_the_fast_path_and_the_route_give_the_same_answers_and_store_the_same_jobs(client):
    reports = [
        ("/api/v1/jobs", {"job_id": "{jid}", **fields(at=T0)}),
        ("/api/v1/jobs/{jid}/started", fields(at=T0 + 1)),
        ("/api/v1/jobs/{jid}/complete", fields(at=T0 + 3)),
    ]
    for path, body in reports:
        pairs = {key: value.format(jid="fast") for key, value in body.items()}
        fast = client.post(path.format(jid="fast"), content=urlencode(pairs), headers=FORM)
        pairs = {key: value.format(jid="routed") for key, value in body.items()}
        routed = client.post(path.format(jid="routed"), content=chunked(pairs), headers=FORM)
        assert "content-length" not in routed.request.headers
        assert (fast.status_code, comparable(fast.json())) == (routed.status_code, comparable(routed.json()))
    assert comparable(job(client, "fast")) == comparable(job(client, "routed"))
    assert job(client, "fast")["status"] == "complete"


def test_the_fast_path_stores_a_report_without_the_routes(client):
    async def no_route(scope, receive, send):
        pytest.fail(f"{scope['path']} reached the routes")

    body = urlencode({"job_id": "direct", **fields(at=T0)}).encode()
    sent = client.portal.call(
        _call, ReportFastPath(no_route, body_timeout_seconds=5), client.app, "/api/v1/jobs", [body]
    )
    assert sent[0]["status"] == 201
    assert job(client, "direct")["queued_at"] is not None


def test_the_fast_path_stores_a_report_under_a_root_path(client):
    # Served under /apps/billing (as a Mount serves it), the report's route path is /api/v1/jobs.
    async def no_route(scope, receive, send):
        pytest.fail(f"{scope['path']} reached the routes")

    body = urlencode({"job_id": "prefixed", **fields(at=T0)}).encode()
    call = partial(_call, root_path="/apps/billing")
    sent = client.portal.call(
        call,
        ReportFastPath(no_route, body_timeout_seconds=5),
        client.app,
        "/apps/billing/api/v1/jobs",
        [body],
    )
    assert sent[0]["status"] == 201
    assert job(client, "prefixed")["queued_at"] is not None


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"job_id": "bad jid", **fields()}, 422, "job_id"),
        ({"job_id": "j1", **fields(arguments={"not": "a list"})}, 422, "arguments"),
        ({"job_id": "j1", **fields(queue="")}, 422, "queue"),
        ({"job_id": "j1", **fields(at="yesterday")}, 422, "at"),
    ],
)
def test_a_refused_form_report_is_worded_by_the_route(client, body, status, named):
    for content in (urlencode(body), chunked(body)):
        response = client.post("/api/v1/jobs", content=content, headers=FORM)
        assert response.status_code == status, response.text
        assert named in response.json()["error"]
    assert total(client) == 0


def test_a_form_body_that_is_not_utf8_is_refused_by_the_route(client):
    response = client.post("/api/v1/jobs/j1/started", content=b"queue=\xff", headers=FORM)
    assert response.status_code == 400
    assert "UTF-8" in response.json()["error"]


def test_a_report_whose_client_leaves_mid_body_is_neither_stored_nor_answered(client):
    whole = urlencode({"job_id": "gone", **fields()}).encode()
    # The first half alone is a valid report (queue=default&job_id=go...): it must not be stored.
    half = whole[: len(whole) - 2]
    sent = client.portal.call(_call, client.app, client.app, "/api/v1/jobs", [half], len(whole))
    assert sent == []
    assert total(client) == 0


async def _call(
    asgi: Any, app: Any, path: str, chunks: list[bytes], length: int | None = None, root_path: str = ""
) -> list[dict[str, Any]]:
    """Drive ``asgi`` with ``app``'s services on the app's event loop (the writer's futures live
    there); ``chunks``, then a disconnect if they fall short of ``length``. ``path`` is the whole
    path, ``root_path`` included."""
    length = sum(map(len, chunks)) if length is None else length
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for chunk in chunks]
    if sum(map(len, chunks)) == length:
        messages[-1]["more_body"] = False
    else:
        messages.append({"type": "http.disconnect"})
    headers = [(b"content-type", FORM["content-type"].encode()), (b"content-length", str(length).encode())]
    scope = {"type": "http", "method": "POST", "path": path, "headers": headers, "app": app}
    scope |= {"query_string": b"", "root_path": root_path, "scheme": "http", "http_version": "1.1"}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await asgi(scope, receive, send)
    return sent


def test_the_fast_path_answers_with_the_routes_headers_and_bytes(client):
    for jid, content in (("same", lambda pairs: urlencode(pairs)), ("same", chunked)):
        client.post("/api/v1/jobs", content=content({"job_id": jid, **fields(at=T0)}), headers=FORM)
    body = fields(at=T0 + 1)
    fast = client.post("/api/v1/jobs/same/started", content=urlencode(body), headers=FORM)
    routed = client.post("/api/v1/jobs/same/started", content=chunked(body), headers=FORM)

    assert fast.status_code == routed.status_code == 200
    assert fast.headers["content-type"] == routed.headers["content-type"] == "application/json"
    assert fast.headers["content-length"] == str(len(fast.content))
    # The same job, both times: the one answer byte for byte (times are written as isoformat does).
    assert fast.content == routed.content
    assert fast.json()["queued_at"].endswith("+00:00")


@pytest.mark.parametrize(("length", "status"), [(128, 201), (129, 422)])
def test_a_path_jid_is_held_to_its_rules_on_both_paths(client, length, status):
    for index, content in enumerate((urlencode, chunked)):
        jid = f"{index}" + "j" * (length - 1)
        response = client.post(f"/api/v1/jobs/{jid}/started", content=content(fields()), headers=FORM)
        assert response.status_code == status, response.text
        if status == 422:
            assert response.json()["detail"][0]["loc"] == ["path", "job_id"]
