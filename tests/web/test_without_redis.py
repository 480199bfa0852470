"""REDIS_URL empty: the service starts; what needs Sidekiq says so clearly, the rest works."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_without_redis_ingest_and_the_ledger_work_and_sidekiq_questions_get_a_clear_503(settings: Settings):
    with TestClient(create_app(settings.model_copy(update={"redis_url": ""}))) as client:
        form = {"job_id": "j1", "arguments": "[1]", "job_class": "W"}
        assert client.post("/api/v1/jobs", data=form).status_code == 201
        assert client.post("/api/v1/jobs/j1/started", data=form).status_code == 200
        assert client.get("/api/v1/jobs/j1").json()["status"] == "started"

        liveness = client.get("/api/v1/liveness")
        restart = client.post("/api/v1/jobs/restart")
        page = client.get("/jobs/j1")
        monitor = client.get("/sidekiq")

    for answer in (liveness, restart):
        assert answer.status_code == 503
        assert "REDIS_URL is not set" in answer.text
    assert page.status_code == 200 and "j1" in page.text
    assert monitor.status_code == 503 and "Redis" in monitor.text
