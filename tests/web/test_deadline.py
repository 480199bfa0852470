"""SUPERVISOR_REQUEST_TIMEOUT_SECONDS: a request the ledger cannot serve in time gets a 503."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from sidekiq_supervisor.web.errors import RETRY_AFTER_SECONDS
from tests.reliability.locks import write_lock
from tests.web.helpers import total

FORM = {"job_id": "late", "arguments": "[1]", "job_class": "W"}


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_report_waiting_past_the_deadline_gets_503_and_is_never_stored(settings: Settings):
    quick = settings.model_copy(update={"request_timeout_seconds": 0.5})
    with TestClient(create_app(quick)) as client:
        assert client.get("/healthz").status_code == 200
        with write_lock(settings.database_url):
            began = time.monotonic()
            response = client.post("/api/v1/jobs", data=FORM)
            waited = time.monotonic() - began
        time.sleep(0.3)  # the writer, free again, would store a ticket still queued

        assert response.status_code == 503
        assert response.headers["retry-after"] == RETRY_AFTER_SECONDS
        assert "did not answer within 0.5 s" in response.json()["error"]
        assert waited < 5, "answered at the deadline, not at the database's busy timeout"
        # The writer took the ticket into a transaction that failed, or it was withdrawn
        # untaken: either way the 503 is the truth.
        assert total(client) == 0
        assert client.post("/api/v1/jobs", data=FORM).status_code == 201


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_a_batch_and_a_json_report_past_the_deadline_get_503_and_are_never_stored(settings: Settings):
    quick = settings.model_copy(update={"request_timeout_seconds": 0.5})
    batch = {"events": [{"event": "queued", **FORM, "arguments": [1]}]}
    with TestClient(create_app(quick)) as client:
        with write_lock(settings.database_url):
            began = time.monotonic()
            responses = [client.post("/api/v1/events", json=batch), client.post("/api/v1/jobs", json=FORM)]
            waited = time.monotonic() - began
        time.sleep(0.3)

        assert [r.status_code for r in responses] == [503, 503]
        assert all("did not answer within 0.5 s" in r.json()["error"] for r in responses)
        assert waited < 5, "answered at the deadline, not at the database's busy timeout"
        assert total(client) == 0
        assert client.post("/api/v1/events", json=batch).status_code == 200
