"""/healthz tells whether a report could be stored right now, and names what stops it if not.

Each failure is real: another connection holding the ledger's write lock, the writer stopped,
its queue filled behind that lock, PostgreSQL cut off by a proxy, or a session PostgreSQL makes
read-only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from sidekiq_supervisor.web.errors import RETRY_AFTER_SECONDS
from tests.reliability.locks import write_lock
from tests.reliability.proxy import tcp_proxy

FORM = {"arguments": "[1]", "job_class": "W"}
# A generous bound on waiting for a state that follows from an event already observed; a wait
# that runs out fails the test, but no assertion is made on how long anything took.
PATIENCE_SECONDS = 10.0
ALL_OK = {"database": "ok", "writer": "ok", "writes": "ok"}


def eventually(check: Callable[[], httpx2.Response | None]) -> httpx2.Response:
    """The first non-None result of ``check``, polled until PATIENCE_SECONDS run out."""
    give_up = time.monotonic() + PATIENCE_SECONDS
    while time.monotonic() < give_up:
        result = check()
        if result is not None:
            return result
        time.sleep(0.05)
    pytest.fail(f"not within {PATIENCE_SECONDS} s")


def health_when(client: TestClient, predicate: Callable[[dict[str, Any]], bool]) -> httpx2.Response:
    """The first /healthz answer whose JSON body satisfies ``predicate``."""

    def check() -> httpx2.Response | None:
        response = client.get("/healthz")
        return response if predicate(response.json()) else None

    return eventually(check)


def assert_unavailable(response: httpx2.Response, check: str, verdict: str) -> None:
    """A JSON 503 with Retry-After whose ``checks[check]`` starts with ``verdict``."""
    body = response.json()
    assert response.status_code == 503, body
    assert response.headers["retry-after"] == RETRY_AFTER_SECONDS
    assert body["status"] == "unavailable"
    assert body["checks"][check].startswith(verdict), body
    assert f"{check} {verdict}" in body["error"]


def test_a_ready_service_answers_200_with_every_check_ok(client: TestClient):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["checks"] == ALL_OK


def test_a_write_lock_held_past_the_deadline_gives_503_until_it_is_released(settings: Settings):
    quick = settings.model_copy(update={"request_timeout_seconds": 0.5})
    with TestClient(create_app(quick)) as client:
        with write_lock(settings.database_url):
            # Reads go on, and a lock no report has waited on is not seen: no write is tried.
            idle = client.get("/healthz")
            refused = client.post("/api/v1/jobs", data={"job_id": "late", **FORM})
            # The report was refused at its deadline while the writer's transaction still waits
            # for the lock: from now until the lock goes, the writer is overdue.
            locked = client.get("/healthz")
        released = health_when(client, lambda body: body["status"] == "ok")
        stored = client.post("/api/v1/jobs", data={"job_id": "after", **FORM})

    assert idle.status_code == 200 and idle.json()["checks"] == ALL_OK
    assert refused.status_code == 503
    assert_unavailable(locked, "writes", "locked out")
    assert locked.json()["checks"]["database"] == "ok"
    assert released.status_code == 200 and released.json()["checks"] == ALL_OK
    assert stored.status_code == 201


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_stopped_writer_gives_503(client: TestClient):
    client.portal.call(client.app.state.apps.default.writer.stop)

    response = client.get("/healthz")

    assert_unavailable(response, "writer", "stopped")
    assert client.post("/api/v1/jobs", data={"job_id": "j", **FORM}).status_code == 503


@pytest.mark.slow  # waits out a 1.5 s request deadline: 3 s
@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_full_writer_queue_gives_503(settings: Settings):
    # One report may wait: the first is held in the writer's transaction by the lock, so the
    # second, waiting behind it, fills the queue until its own deadline.
    crowded = settings.model_copy(update={"ingest_queue_limit": 1, "request_timeout_seconds": 1.5})
    with TestClient(create_app(crowded)) as client:
        with write_lock(settings.database_url):
            assert client.post("/api/v1/jobs", data={"job_id": "held", **FORM}).status_code == 503
            second = {"data": {"job_id": "waiting", **FORM}}
            waiting = threading.Thread(target=client.post, args=("/api/v1/jobs",), kwargs=second)
            waiting.start()
            full = health_when(client, lambda body: body["checks"]["writer"] != "ok")
            waiting.join()
        health_when(client, lambda body: body["status"] == "ok")

    assert_unavailable(full, "writer", "queue full: 1 reports waiting (limit 1)")


@pytest.fixture
def cuttable_postgres(postgres_url: str) -> Iterator[tuple[str, Any]]:
    """A URL reaching the tests' PostgreSQL through a proxy the test can cut."""
    url = make_url(postgres_url)
    with tcp_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        yield url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False), proxy


def test_an_unreachable_database_gives_503_and_recovers_alone(cuttable_postgres: tuple[str, Any]):
    url, proxy = cuttable_postgres
    with TestClient(create_app(Settings(database_url=url, redis_url=""))) as client:
        assert client.get("/healthz").status_code == 200
        proxy.cut()
        cut = client.get("/healthz")
        proxy.restore()
        back = health_when(client, lambda body: body["status"] == "ok")

    assert_unavailable(cut, "database", "unreachable")
    assert back.json()["checks"] == ALL_OK


def test_a_read_only_postgresql_gives_503(postgres_url: str):
    # As on a hot standby, or a database set read-only: PostgreSQL refuses every write.
    read_only = f"{postgres_url}?options=-c%20default_transaction_read_only%3Don"
    with TestClient(create_app(Settings(database_url=read_only, redis_url=""))) as client:
        health = client.get("/healthz")
        report = client.post("/api/v1/jobs", data={"job_id": "j", **FORM})

    assert_unavailable(health, "database", "read-only")
    assert report.status_code == 503
