"""``sidekiq-supervisor serve``: the real command as a process, its answers and its warnings."""

from __future__ import annotations

import httpx2
import pytest

from sidekiq_supervisor.domain.model import JobStatus
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.queries import find_job
from tests.conftest import redis_test_url
from tests.live_service import running_service

# The service started as a process: not in the fast lane.
pytestmark = pytest.mark.e2e


def test_serve_runs_the_service_and_stores_a_form_encoded_report(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'served.db'}"
    report = {
        "job_id": "0123456789abcdef01234567",
        "arguments": '[42,"alice@example.com"]',
        "job_class": "HardWorker",
        "queue": "critical",
    }
    with running_service(database_url, tmp_path, REDIS_URL=redis_test_url()) as service:
        response = httpx2.post(f"{service.url}/api/v1/jobs", data=report, timeout=10.0)

    assert response.status_code == 201, response.text
    assert response.json()["status"] == "queued"
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            job = find_job(connection, "0123456789abcdef01234567")
    finally:
        engine.dispose()
    assert job is not None
    assert (job.job_class, job.queue, job.arguments) == ("HardWorker", "critical", '[42,"alice@example.com"]')
    assert job.status is JobStatus.QUEUED


@pytest.mark.parametrize("token", [None, "s3cret"])
def test_serve_warns_when_it_listens_beyond_localhost_with_no_api_token(tmp_path, token):
    env = {"REDIS_URL": redis_test_url(), **({"SUPERVISOR_API_TOKEN": token} if token else {})}
    with running_service(f"sqlite:///{tmp_path / 'open.db'}", tmp_path, host="0.0.0.0", **env) as service:
        log = service.log_text()

    assert ("WARNING" in log and "SUPERVISOR_API_TOKEN" in log) is (token is None), log


@pytest.mark.parametrize("credentials", [False, True])
def test_serve_warns_naming_the_open_pages_beyond_localhost_even_with_an_api_token(tmp_path, credentials):
    env = {"REDIS_URL": redis_test_url(), "SUPERVISOR_API_TOKEN": "s3cret"}
    if credentials:
        env |= {"SUPERVISOR_USERNAME": "admin", "SUPERVISOR_PASSWORD": "pw"}
    with running_service(f"sqlite:///{tmp_path / 'pages.db'}", tmp_path, host="0.0.0.0", **env) as service:
        log = service.log_text()

    warned = "SUPERVISOR_USERNAME/SUPERVISOR_PASSWORD" in log
    assert warned is not credentials, log
    if warned:
        assert "/restart" in log and "/sidekiq" in log
