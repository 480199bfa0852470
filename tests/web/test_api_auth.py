"""SUPERVISOR_API_TOKEN: every /api/v1 route wants one of the tokens; without it the API is open."""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.api.auth import matches_any, presented_token
from sidekiq_supervisor.web.app import create_app

FORM = {"job_id": "a1", "arguments": "[1]", "job_class": "HardWorker", "queue": "default"}


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def guarded(settings: Settings) -> Iterator[TestClient]:
    """An app with two tokens configured: the current one and the one being retired."""
    with TestClient(create_app(settings.model_copy(update={"api_token": "new-t0ken, old-t0ken"}))) as client:
        yield client


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/jobs"),
        ("post", "/api/v1/jobs/a1/started"),
        ("post", "/api/v1/events"),
        ("get", "/api/v1/jobs"),
        ("get", "/api/v1/jobs/a1"),
        ("get", "/api/v1/stats"),
        ("get", "/api/v1/durations"),
        ("post", "/api/v1/jobs/restart"),
        ("get", "/api/v1/alerts"),
        ("post", "/api/v1/alerts/test"),
    ],
)
def test_without_a_token_every_api_route_answers_401_with_a_json_error(guarded, method, path):
    response = getattr(guarded, method)(path)

    assert response.status_code == 401
    assert response.json()["error"] == "a valid API token is required"
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Bearer new-t0ken-and-more"},
        {"Authorization": "Bearer "},
        {"Authorization": "Token new-t0ken"},
        basic("user", "wrong"),
        {"Authorization": "Basic not-base64!"},
    ],
)
def test_a_wrong_token_is_refused_and_nothing_is_stored(guarded, headers):
    assert guarded.post("/api/v1/jobs", data=FORM, headers=headers).status_code == 401

    stats = guarded.get("/api/v1/stats", headers={"Authorization": "Bearer new-t0ken"})
    assert stats.json()["jobs"]["total"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer new-t0ken"},
        {"Authorization": "Bearer old-t0ken"},  # rotation: the retiring token still works
        {"authorization": "bearer new-t0ken"},
        basic("anyone", "new-t0ken"),
        basic("old-t0ken", ""),  # http://TOKEN@host
    ],
)
def test_each_configured_token_is_accepted_as_bearer_or_basic(guarded, headers):
    response = guarded.post("/api/v1/jobs", data=FORM, headers=headers)

    assert response.status_code == 201, response.text
    assert guarded.get("/api/v1/jobs/a1", headers=headers).json()["status"] == "queued"


def test_health_stays_open_for_load_balancers(guarded):
    assert guarded.get("/healthz").status_code == 200


def test_without_tokens_configured_the_api_is_open(client):
    assert client.post("/api/v1/jobs", data=FORM).status_code == 201


def test_settings_split_the_tokens_on_commas():
    assert Settings(api_token=" a , b,,").api_tokens == ("a", "b")
    assert Settings().api_tokens == ()


def test_the_token_is_read_from_the_header_forms():
    assert presented_token("Bearer abc") == "abc"
    assert presented_token("Basic " + b64encode(b"u:p:with:colons").decode()) == "p:with:colons"
    assert presented_token("Basic " + b64encode(b"\xff\xfe").decode()) is None
    assert presented_token("") is None
    assert matches_any("b", ("a", "b")) is True
    assert matches_any("c", ("a", "b")) is False
