"""Every 503 of a Redis outage says when to try again, as the database's 503s do.

Redis is taken away as in ``test_without_redis.py`` and ``tests/reliability/test_redis_outage.py``:
``REDIS_URL`` empty, or pointing at a port where nothing listens. The JSON API (liveness,
restarts), the restart pages and the ``/sidekiq`` pages, in the main app and in the monitor app
alone, all answer 503 with ``Retry-After``.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from sidekiq_supervisor.web.errors import RETRY_AFTER_SECONDS
from sidekiq_supervisor.web.monitor import create_monitor_app
from sidekiq_supervisor.web.security import CSRF_COOKIE
from tests.live_service import free_port

API_CALLS = [
    ("GET", "/api/v1/liveness"),
    ("POST", "/api/v1/jobs/restart"),
    ("POST", "/api/v1/jobs/restart?dry_run=true"),
]
MONITOR_PAGES = ["/sidekiq", "/sidekiq/stats", "/sidekiq/busy", "/sidekiq/queues", "/sidekiq/retries"]


@pytest.fixture(params=["unset", "closed-port"])
def redis_away(request: pytest.FixtureRequest) -> str:
    """A ``REDIS_URL`` without a Redis behind it: empty, or a port where nothing listens."""
    return "" if request.param == "unset" else f"redis://127.0.0.1:{free_port()}/0"


@pytest.fixture
def client(settings: Settings, redis_away: str) -> Iterator[TestClient]:
    """The whole app on the test's ledger, its Redis away; one uncompleted job to restart."""
    with TestClient(create_app(settings.model_copy(update={"redis_url": redis_away}))) as client:
        form = {"arguments": "[1]", "job_class": "W"}
        assert client.post("/api/v1/jobs/stuck/started", data=form).status_code == 201
        yield client


def assert_retry_later(response: httpx2.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == RETRY_AFTER_SECONDS


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("method", "path"), API_CALLS)
def test_the_api_routes_that_need_redis_answer_503_with_retry_after(
    client: TestClient, method: str, path: str
):
    response = client.request(method, path)

    assert_retry_later(response)
    assert "Redis" in response.json()["error"] or "REDIS_URL" in response.json()["error"]


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("path", MONITOR_PAGES)
def test_the_sidekiq_pages_answer_503_with_retry_after(client: TestClient, path: str):
    response = client.get(path)

    assert_retry_later(response)
    assert "Redis" in response.text


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_sidekiq_action_answers_503_with_retry_after(client: TestClient):
    client.get("/sidekiq")  # sets the CSRF cookie the action's form must repeat
    form = {"csrf_token": client.cookies[CSRF_COOKIE], "action": "quiet_all"}

    assert_retry_later(client.post("/sidekiq/busy", data=form, follow_redirects=False))


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_the_restart_preview_and_its_confirmation_answer_503_with_retry_after(client: TestClient):
    preview = client.get("/restart")
    token = client.cookies[CSRF_COOKIE]
    confirm = client.post("/restart", data={"csrf_token": token, "jids": "stuck"})

    for page in (preview, confirm):
        assert_retry_later(page)
        assert "Redis" in page.text or "REDIS_URL" in page.text
    assert client.get("/api/v1/jobs/stuck").json()["status"] == "started"  # nothing was restarted


def test_the_monitor_app_alone_answers_503_with_retry_after(redis_away: str):
    with TestClient(create_monitor_app(Settings(redis_url=redis_away))) as client:
        response = client.get("/sidekiq")

    assert_retry_later(response)
