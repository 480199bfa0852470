"""SUPERVISOR_REDACT_KEYS: secret-looking values in arguments are masked before storage."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import text

from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.web.app import create_app
from tests.web.helpers import job

SECRET_ARGS = [7, {"email": "a@example.com", "password": "hunter2", "auth": {"api_token": "tk-1"}}]


def test_by_default_passwords_and_tokens_never_reach_the_store(client, engine):
    form = {"job_id": "s1", "arguments": json.dumps(SECRET_ARGS), "job_class": "SignupJob"}
    assert client.post("/api/v1/jobs", data=form).status_code == 201
    batch = {
        "events": [{"event": "started", "job_id": "s2", "job_class": "SignupJob", "arguments": SECRET_ARGS}]
    }
    assert client.post("/api/v1/events", json=batch).json()["stored"] == 1

    masked = [7, {"email": "a@example.com", "password": "[REDACTED]", "auth": {"api_token": "[REDACTED]"}}]
    assert job(client, "s1")["arguments"] == masked
    assert job(client, "s2")["arguments"] == masked
    with engine.connect() as connection:
        stored = connection.execute(text("SELECT arguments FROM jobs")).scalars().all()
    assert stored and not any("hunter2" in row or "tk-1" in row for row in stored)
    assert client.get("/api/v1/jobs", params={"q": "hunter2"}).json()["data"] == []
    assert [j["jid"] for j in client.get("/api/v1/jobs", params={"q": "a@example.com"}).json()["data"]]


def test_the_words_are_configurable_and_an_empty_setting_turns_redaction_off(settings: Settings):
    for words, expected in (("email", "[REDACTED]"), ("", "a@example.com")):
        with TestClient(create_app(settings.model_copy(update={"redact_keys": words}))) as client:
            form = {
                "job_id": f"w{len(words)}",
                "arguments": json.dumps(SECRET_ARGS),
                "job_class": "SignupJob",
            }
            assert client.post("/api/v1/jobs", data=form).status_code == 201
            arguments = job(client, f"w{len(words)}")["arguments"]
        assert arguments[1]["email"] == expected
        assert arguments[1]["password"] == "hunter2"
