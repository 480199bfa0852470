"""SUPERVISOR_MAX_ARGUMENTS_BYTES and SUPERVISOR_MAX_BODY_BYTES: each refusal names its limit."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from tests.web.helpers import total


@pytest.fixture
def strict(settings: Settings):
    limits = {"max_arguments_bytes": 2048, "max_body_bytes": 32 * 1024}
    with TestClient(create_app(settings.model_copy(update=limits))) as client:
        yield client


def test_arguments_past_the_configured_size_are_refused_naming_the_limit(strict):
    small, large = ["x" * 2000], ["x" * 2100]
    form = {"job_id": "a", "job_class": "W"}

    assert strict.post("/api/v1/jobs", data={**form, "arguments": json.dumps(small)}).status_code == 201
    refused = strict.post("/api/v1/jobs", data={**form, "job_id": "b", "arguments": json.dumps(large)})
    batch = {"events": [{"event": "queued", "job_id": "c", "job_class": "W", "arguments": large}]}
    item = strict.post("/api/v1/events", json=batch).json()["results"][0]

    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid arguments"
    assert "longer than 2048 bytes" in refused.json()["detail"][0]["msg"]
    assert item["status"] == 422 and "longer than 2048 bytes" in item["detail"][0]["msg"]
    assert total(strict) == 1


def test_a_body_past_the_configured_size_gets_413_naming_the_limit(strict):
    form = {"job_id": "a", "job_class": "W", "arguments": "[]", "padding": "p" * 40_000}

    response = strict.post("/api/v1/jobs", data=form)
    batch = strict.post("/api/v1/events", json={"events": [], "padding": "p" * 40_000})

    assert response.status_code == 413 and batch.status_code == 413
    assert "larger than 32768 bytes" in response.json()["error"]
    assert total(strict) == 0


def test_the_defaults_are_64_kib_of_arguments_and_1_mib_of_body():
    assert (Settings().max_arguments_bytes, Settings().max_body_bytes) == (65_536, 1_048_576)
