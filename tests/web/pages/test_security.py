"""Basic auth, CSRF and cross-site refusals on the dashboard; the JSON API keeps its own rules."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.web.app import create_app
from sidekiq_supervisor.web.security import credentials_match
from tests.web.pages.conftest import csrf_of


@pytest.fixture
def guarded(settings):
    """A client on an app whose pages want user ``ops`` and password ``s3cret``."""
    settings = settings.model_copy(update={"username": "ops", "password": "s3cret"})
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize("path", ["/", "/jobs", "/jobs/x", "/durations", "/restart", "/static/app.css"])
def test_every_page_wants_the_credentials(guarded, path):
    response = guarded.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic ")
    assert guarded.get(path, auth=("ops", "wrong")).status_code == 401
    assert guarded.get(path, auth=("other", "s3cret")).status_code == 401
    assert guarded.get(path, auth=("ops", "s3cret")).status_code in (200, 404)


def test_actions_want_the_credentials_too(guarded):
    assert guarded.post("/restart", data={"jids": "x"}).status_code == 401


def test_the_api_and_health_check_are_not_behind_the_page_credentials(guarded):
    assert guarded.get("/api/v1/stats").status_code == 200
    assert guarded.get("/healthz").status_code == 200


def test_pages_are_open_without_configured_credentials(client):
    assert client.get("/").status_code == 200


def test_credentials_match_only_the_exact_pair():
    header = "Basic b3BzOnMzY3JldA=="  # ops:s3cret
    assert credentials_match(header, ("ops", "s3cret"))
    assert not credentials_match(header, ("ops", "s3cret2"))
    assert not credentials_match("Basic !!!", ("ops", "s3cret"))
    assert not credentials_match("Bearer s3cret", ("ops", "s3cret"))


def test_a_post_without_the_csrf_token_is_refused(client):
    client.get("/restart")
    assert client.post("/restart", data={"jids": "x"}).status_code == 403
    assert client.post("/restart", data={"jids": "x", "csrf_token": "forged"}).status_code == 403


def restart_form_token(client) -> str:
    """The token of the restart form (an uncompleted job makes the form appear)."""
    body = {"arguments": [1], "job_class": "ReportBuilder", "at": 1_000_000}
    client.post("/api/v1/jobs/orphan1/started", json=body)
    return csrf_of(client.get("/restart").text)


def test_a_token_without_its_cookie_is_refused(client, redis_client):
    token = restart_form_token(client)
    client.cookies.clear()
    assert client.post("/restart", data={"jids": "x", "csrf_token": token}).status_code == 403


def test_a_cross_site_post_is_refused_even_with_a_token(client, redis_client):
    token = restart_form_token(client)
    data = {"jids": "x", "csrf_token": token}
    assert client.post("/restart", data=data, headers={"Origin": "https://evil.example"}).status_code == 403
    headers = {"Sec-Fetch-Site": "cross-site"}
    assert client.post("/restart", data=data, headers=headers).status_code == 403
    assert '<span class="badge badge-started">started</span>' in client.get("/jobs/orphan1").text


def test_the_csrf_cookie_is_http_only_and_same_site(client):
    cookie = client.get("/restart").headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
