"""/openapi.json documents exactly the error statuses each route answers, and each one is real.

For every /api/v1 route and /healthz, ``ERRORS`` lists the error statuses the code can answer.
Two checks keep the documentation and the behaviour from drifting apart:

- the schema documents exactly those statuses, each with the JSON body of ``web.api.openapi_errors``
  (503 with its ``Retry-After`` header, 401 with its challenge);
- a real request provokes each of them, and the answer has the documented body and headers.

The requests meet real conditions only: a token the request lacks, a body past the configured
size, a PostgreSQL cut off by a proxy, a Redis port where nothing listens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.api.openapi_errors import HEALTH_RESPONSES, error_responses
from sidekiq_supervisor.web.app import create_app
from tests.live_service import free_port
from tests.reliability.proxy import tcp_proxy

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# The smallest body limit the settings allow, and a batch limit of two events.
MAX_BODY = 16 * 1024
MAX_BATCH = 2

REPORT = {"arguments": "[1]", "job_class": "W"}
QUEUED = {"job_id": "j1", **REPORT}
EVENT = {"event": "queued", "job_id": "j1", "arguments": [1], "job_class": "W"}
PADDING = "p" * (MAX_BODY + 1)
NOT_JSON = {"content": b"{not json", "headers": {"content-type": "application/json"}}
NOT_UTF8_FORM = {"content": b"job_id=\xff", "headers": {"content-type": "application/x-www-form-urlencoded"}}
PLAIN_TEXT = {"content": b"job_id=j1", "headers": {"content-type": "text/plain"}}
INVALID_QUERY = {
    "/api/v1/jobs": {"limit": 0},
    "/api/v1/durations": {"from": "nowhere"},
    "/api/v1/liveness": {"q": "x" * 201},
    "/api/v1/jobs/restart": {"q": "\x00"},
    "/api/v1/recoveries": {"limit": 0},
}
SEED_ROUTES = [
    "/api/v1/jobs",
    *(f"/api/v1/jobs/{{job_id}}/{kind}" for kind in ("started", "complete", "failed")),
]

# The error statuses each route can answer, read off the code that answers them.
ERRORS: dict[tuple[str, str], set[int]] = {
    **{("POST", path): {400, 401, 413, 415, 422, 503} for path in SEED_ROUTES},
    ("POST", "/api/v1/events"): {400, 401, 413, 422, 503},
    ("GET", "/api/v1/jobs"): {401, 422, 503},
    ("GET", "/api/v1/jobs/{job_id}"): {401, 404, 503},
    ("GET", "/api/v1/jobs/{job_id}/history"): {401, 404, 503},
    ("GET", "/api/v1/durations"): {401, 422, 503},
    ("GET", "/api/v1/stats"): {401, 503},
    ("GET", "/api/v1/liveness"): {401, 422, 503},
    ("GET", "/api/v1/recoveries"): {401, 422, 503},
    ("POST", "/api/v1/jobs/restart"): {401, 422, 503},
    ("GET", "/api/v1/alerts"): {401, 503},
    ("POST", "/api/v1/alerts/test"): {401, 409, 503},
    ("GET", "/healthz"): {503},
    ("GET", "/metrics"): {401},
    ("GET", "/api/v1/apps"): {401},
}


@dataclass(frozen=True)
class Call:
    """One request, on the app of a ``world``: ``strict`` (SQLite, a token, small limits, no
    Redis) or ``cut`` (PostgreSQL behind a proxy that was cut, no Redis)."""

    world: str
    path: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    authorized: bool = True


def _seed_path(template: str) -> str:
    return template.replace("{job_id}", "j1")


def _seed_body(template: str) -> dict[str, str]:
    return QUEUED if template == "/api/v1/jobs" else REPORT


def _provocations(method: str, template: str) -> dict[int, list[Call]]:
    """The requests that must get each error status of one route."""
    if method == "POST" and template in SEED_ROUTES:
        path, form = _seed_path(template), _seed_body(template)
        incomplete = {key: value for key, value in form.items() if key != "arguments"}
        return {
            400: [Call("strict", path, NOT_JSON), Call("strict", path, NOT_UTF8_FORM)],
            401: [Call("strict", path, {"data": form}, authorized=False)],
            413: [Call("strict", path, {"data": {**form, "padding": PADDING}})],
            415: [Call("strict", path, PLAIN_TEXT)],
            422: [Call("strict", path, {"data": incomplete}), Call("strict", path, {"json": [1, 2]})],
            503: [Call("cut", path, {"data": form}), Call("cut", path, {"json": form})],
        }
    if template == "/api/v1/events":
        path, batch = template, {"events": [EVENT]}
        return {
            400: [Call("strict", path, NOT_JSON)],
            401: [Call("strict", path, {"json": batch}, authorized=False)],
            413: [
                Call("strict", path, {"json": {**batch, "padding": PADDING}}),
                Call("strict", path, {"json": {"events": [EVENT] * (MAX_BATCH + 1)}}),
            ],
            422: [
                Call("strict", path, {"json": {"events": "none"}}),
                Call("strict", path, {"json": [EVENT]}),
            ],
            503: [Call("cut", path, {"json": batch})],
        }
    path = template.replace("{job_id}", "nobody")
    # Liveness and restarts need Sidekiq's Redis, which no world has; the rest need the database.
    needs_redis = template in ("/api/v1/liveness", "/api/v1/jobs/restart")
    calls: dict[int, list[Call]] = {
        401: [Call("strict", path, authorized=False)],
        404: [Call("strict", path)],
        422: [Call("strict", path, {"params": INVALID_QUERY.get(template, {})})],
        503: [Call("strict" if needs_redis else "cut", path)],
        # The strict world has no notification URL: nothing to send a test to.
        409: [Call("strict", path)],
    }
    if template == "/api/v1/jobs/restart":
        calls[503].append(Call("strict", path, {"params": {"dry_run": "true"}}))
    return {code: calls[code] for code in ERRORS[(method, template)]}


CASES = [
    pytest.param(method, template, code, id=f"{method} {template} {code}")
    for (method, template), codes in ERRORS.items()
    for code in sorted(codes)
]


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """SQLite, an API token, the smallest body limit, batches of two, and Redis away."""
    ledger = tmp_path_factory.mktemp("strict") / "ledger.db"
    settings = Settings(
        database_url=f"sqlite:///{ledger}",
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        api_token=TOKEN,
        max_body_bytes=MAX_BODY,
        max_batch_reports=MAX_BATCH,
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def cut(postgres_url: str) -> Iterator[TestClient]:
    """PostgreSQL reached through a proxy that is cut once the app has started, and Redis away."""
    url = make_url(postgres_url)
    with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        # A notification URL, so that a test notification gets as far as the database.
        settings = Settings(
            database_url=proxied,
            redis_url=f"redis://127.0.0.1:{free_port()}/0",
            notify=f"json://127.0.0.1:{free_port()}/",
        )
        with TestClient(create_app(settings)) as client:
            proxy.cut()
            yield client


@pytest.fixture(scope="module")
def schema(strict: TestClient) -> dict[str, Any]:
    """The published /openapi.json."""
    return strict.get("/openapi.json").json()


def _documented_model(template: str, code: int) -> type[BaseModel]:
    """The body model ``web.api.openapi_errors`` documents for this status of this route."""
    responses = HEALTH_RESPONSES if template == "/healthz" else error_responses(code)
    return responses[code]["model"]


def test_every_route_is_listed(schema: dict[str, Any]):
    published = {(method.upper(), path) for path, ops in schema["paths"].items() for method in ops}

    assert published == set(ERRORS)


@pytest.mark.parametrize(("method", "template"), list(ERRORS), ids=[f"{m} {t}" for m, t in ERRORS])
def test_the_schema_documents_exactly_the_errors_the_route_answers(
    schema: dict[str, Any], method: str, template: str
):
    responses = schema["paths"][template][method.lower()]["responses"]
    documented = {int(code) for code in responses if int(code) >= 400}

    assert documented == ERRORS[(method, template)]
    for code in documented:
        entry = responses[str(code)]
        model = _documented_model(template, code)
        assert entry["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{model.__name__}"
        }
        assert entry["description"]
        if code == 503:
            assert entry["headers"]["Retry-After"]["required"] is True
        if code == 401:
            assert "WWW-Authenticate" in entry["headers"]


@pytest.mark.parametrize(("method", "template", "code"), CASES)
def test_each_documented_error_is_really_answered(
    request: pytest.FixtureRequest, method: str, template: str, code: int
):
    for call in _provocations(method, template)[code]:
        client: TestClient = request.getfixturevalue(call.world)
        headers = {**(AUTH if call.authorized else {}), **call.kwargs.get("headers", {})}
        kwargs = {**call.kwargs, "headers": headers}
        response = client.request(method, call.path, **kwargs)

        assert response.status_code == code, (call, response.text)
        _assert_as_documented(response, _documented_model(template, code))


def _assert_as_documented(response: httpx2.Response, model: type[BaseModel]) -> None:
    assert response.headers["content-type"] == "application/json"
    model.model_validate(response.json(), strict=True)
    assert response.json()["error"]
    if response.status_code == 503:
        assert int(response.headers["retry-after"]) >= 1
    if response.status_code == 401:
        assert response.headers["www-authenticate"].startswith("Bearer ")


def test_the_strict_world_stores_what_is_valid(strict: TestClient):
    # The provocations above are refusals because of what they break, not of the setup.
    assert strict.post("/api/v1/jobs", data={**QUEUED, "job_id": "valid"}, headers=AUTH).status_code == 201
    assert strict.get("/api/v1/jobs/valid", headers=AUTH).status_code == 200
