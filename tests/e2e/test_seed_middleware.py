"""End to end: the seed's Ruby middlewares, as printed, record jobs in the real service.

The service runs as a subprocess (``sidekiq-supervisor serve``) on SQLite and on PostgreSQL; a Ruby
script drives the seed's ``JobQueued`` and ``CheckInCheckOut`` (Faraday, form-encoded) for a few
dozen jobs, some of which raise while running; the test then reads the ledger back over HTTP.

Needs Debian's ``ruby`` and ``ruby-faraday`` (``.ci/run`` installs them); skipped without them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.live_service import Service, running_service

# Real Sidekiq processes (and the service as a process): not in the fast lane.
pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
DRIVER = HERE / "drive_seed_middlewares.rb"
JOB_COUNT = 40


def _ruby_with_faraday() -> str:
    """The path of ``ruby``, or skip: a developer machine may lack Ruby or the faraday gem."""
    ruby = shutil.which("ruby")
    if ruby is None:
        pytest.skip("needs `ruby` on PATH (apt-get install ruby ruby-faraday; .ci/run installs them)")
    probe = subprocess.run(
        [ruby, "-e", 'require "faraday"'], capture_output=True, text=True, timeout=30, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"needs the faraday gem (apt-get install ruby-faraday): {probe.stderr.strip()}")
    return ruby


@pytest.fixture
def service(ledger_url: str, tmp_path: Path) -> Iterator[Service]:
    """The real service as a subprocess on an empty ledger (SQLite file, or the test PostgreSQL)."""
    _ruby_with_faraday()  # skip before starting anything
    with running_service(ledger_url, tmp_path) as running:
        yield running


def _drive(service: Service, count: int) -> list[dict[str, Any]]:
    """Run the Ruby driver against the service; the jobs it pushed, with expected outcomes."""
    ruby = _ruby_with_faraday()
    env = {
        **os.environ,
        "SIDEKIQ_SUPERVISOR_HOST": service.url,
        "SIDEDIQ_SUPERVISOR_HOST": service.url,  # the seed's client middleware has this typo
    }
    for proxy in ("http_proxy", "HTTP_PROXY"):  # Net::HTTP honours these; the service is local
        env.pop(proxy, None)
    done = subprocess.run(
        [ruby, str(DRIVER), str(count)], env=env, capture_output=True, timeout=60, check=False
    )
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, f"the Ruby driver failed:\n{stderr}\nservice log:\n{service.log_text()}"
    return json.loads(done.stdout.decode("utf-8"))


def _moment(value: str | None) -> datetime:
    assert value is not None
    return datetime.fromisoformat(value)


def _jids(page: dict[str, Any]) -> set[str]:
    assert page["next_cursor"] is None, "expected every job on one page"
    return {job["jid"] for job in page["data"]}


def test_seed_middlewares_record_jobs(service: Service) -> None:
    pushed = _drive(service, JOB_COUNT)
    assert len(pushed) == JOB_COUNT
    completed = {job["jid"] for job in pushed if job["outcome"] == "complete"}
    uncompleted = {job["jid"] for job in pushed if job["outcome"] == "started"}
    assert completed
    assert uncompleted

    with httpx2.Client(base_url=service.url, timeout=10, trust_env=False) as client:

        def get(path: str, **params: Any) -> dict[str, Any]:
            response = client.get(path, params=params)
            assert response.status_code == 200, f"GET {path} {params}: {response.text}"
            return response.json()

        # The seed's lists: nothing left queued, raising jobs uncompleted, the rest completed.
        assert _jids(get("/api/v1/jobs", status="queued", limit=1000)) == set()
        assert _jids(get("/api/v1/jobs", status="uncompleted", limit=1000)) == uncompleted
        assert _jids(get("/api/v1/jobs", status="completed", limit=1000)) == completed
        assert _jids(get("/api/v1/jobs", status="all", limit=1000)) == completed | uncompleted

        for job in pushed:
            stored = get(f"/api/v1/jobs/{job['jid']}")
            assert stored["jid"] == job["jid"]
            assert stored["job_class"] == job["class"]
            assert stored["queue"] == job["queue"]
            assert stored["arguments"] == job["args"], "arguments must round-trip exactly"
            assert stored["attempts"] == 1
            assert stored["restarted_from"] is None
            queued, started = _moment(stored["queued_at"]), _moment(stored["started_at"])
            assert queued < started
            if job["outcome"] == "complete":
                assert stored["status"] == "complete"
                assert started < _moment(stored["completed_at"])
                assert [e["event"] for e in stored["history"]] == ["queued", "started", "complete"]
            else:
                assert stored["status"] == "started"
                assert stored["completed_at"] is None
                assert [e["event"] for e in stored["history"]] == ["queued", "started"]

        # Durations list the completed jobs only, with durations matching their times.
        for origin in ("queued", "started"):
            durations = get("/api/v1/durations", **{"from": origin, "limit": 1000})
            assert _jids(durations) == completed
            assert durations["summary"]["count"] == len(completed)
            for job in durations["data"]:
                seconds = job[f"{origin}_to_completion_seconds"]
                expected = _moment(job["completed_at"]) - _moment(job[f"{origin}_at"])
                assert seconds == pytest.approx(expected.total_seconds(), abs=1e-6)
                assert seconds > 0

        # The arguments filter finds a job by a substring of its email, in any (ASCII) case.
        first_completed = next(job for job in pushed if job["jid"] in completed)
        first_uncompleted = next(job for job in pushed if job["jid"] in uncompleted)
        for job in (first_completed, first_uncompleted):
            needle = job["email"].split("@")[0].split(".", 1)[1]  # the random part: unique
            assert _jids(get("/api/v1/jobs", q=needle)) == {job["jid"]}
            assert _jids(get("/api/v1/jobs", q=needle.upper())) == {job["jid"]}
            status = "completed" if job["outcome"] == "complete" else "uncompleted"
            assert _jids(get("/api/v1/jobs", status=status, q=job["email"])) == {job["jid"]}
            assert _jids(get("/api/v1/durations", q=needle)) == ({job["jid"]} & completed)
