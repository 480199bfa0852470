"""Redis outages: restarts and liveness answer a clear JSON 503 in bounded time, while ingest and
ledger reads, which never touch Redis, go on as usual.

Redis is taken away in two ways: a URL on a closed port (refused at once) and a proxy that
stops answering (a partition, where only the client's timeouts help). The machine's Redis is
never touched.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
import redis
from sqlalchemy.engine import make_url

from tests.conftest import redis_test_url
from tests.live_service import free_port
from tests.reliability.known_bugs import check_bound
from tests.reliability.probes import Probe, concurrently, probe
from tests.reliability.proxy import tcp_proxy
from tests.reliability.service import ServiceProcess

# Reliability: the service as a process, through faults that take seconds.
pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# The Redis client's connect and read timeouts are 5 s each (services/job_manager.py).
ANSWER_BOUND_SECONDS = 10.0
FORM = {"arguments": '["redis-outage"]', "job_class": "HardWorker"}


def _redis_calls(client: httpx2.Client) -> list[Probe]:
    """The three routes that need Sidekiq's Redis, at once."""
    return concurrently(
        lambda: probe(client, "GET", "/api/v1/liveness"),
        lambda: probe(client, "POST", "/api/v1/jobs/restart"),
        lambda: probe(client, "POST", "/api/v1/jobs/restart", params={"dry_run": "true"}),
    )


def _assert_ledger_works(client: httpx2.Client, jid: str) -> None:
    """Ingest and reads answer as if Redis were there."""
    assert client.post("/api/v1/jobs", data={"job_id": jid, **FORM}).status_code == 201
    assert client.post(f"/api/v1/jobs/{jid}/complete", data=FORM).status_code == 200
    assert client.get(f"/api/v1/jobs/{jid}").json()["status"] == "complete"
    assert client.get("/api/v1/jobs", params={"status": "uncompleted"}).status_code == 200
    assert client.get("/api/v1/stats").status_code == 200


def _assert_clear_503s(calls: list[Probe]) -> None:
    assert [p.what for p in calls if not p.is_json_error(503)] == [], calls
    assert all("Redis" in p.body["error"] for p in calls), calls
    check_bound("Redis routes during the outage", [p.seconds for p in calls], ANSWER_BOUND_SECONDS, None)


@pytest.mark.timeout(60)
def test_redis_on_a_closed_port(tmp_path: Path) -> None:
    closed = f"redis://127.0.0.1:{free_port()}/0"
    service = ServiceProcess(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, REDIS_URL=closed)
    service.start()
    try:
        with httpx2.Client(base_url=service.url, timeout=ANSWER_BOUND_SECONDS + 5, trust_env=False) as client:
            # An uncompleted job, so that a restart would have something to take.
            assert client.post("/api/v1/jobs/stuck/started", data=FORM).status_code == 201
            _assert_clear_503s(_redis_calls(client))
            _assert_ledger_works(client, "during-outage")
            # The failed restart changed nothing: the job is still there, uncompleted.
            assert client.get("/api/v1/jobs/stuck").json()["status"] == "started"
    finally:
        service.stop()


@pytest.mark.timeout(60)
def test_redis_partition_then_return(tmp_path: Path, redis_client: redis.Redis) -> None:
    target = make_url(redis_test_url())
    with tcp_proxy(target.host or "127.0.0.1", target.port or 6379) as proxy:
        proxied = f"redis://127.0.0.1:{proxy.port}/{target.database or 0}"
        service = ServiceProcess(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, REDIS_URL=proxied)
        service.start()
        try:
            with httpx2.Client(
                base_url=service.url, timeout=ANSWER_BOUND_SECONDS + 5, trust_env=False
            ) as client:
                assert client.post("/api/v1/jobs/stuck/started", data=FORM).status_code == 201
                assert client.get("/api/v1/liveness").status_code == 200  # a pooled connection exists
                proxy.blackhole()
                _assert_clear_503s(_redis_calls(client))
                _assert_ledger_works(client, "during-partition")
                proxy.restore()
                # Back by itself: the next call gets a fresh answer from Redis.
                answer = client.get("/api/v1/liveness")
                assert answer.status_code == 200, answer.text
                assert [row["jid"] for row in answer.json()["data"]] == ["stuck"]
        finally:
            service.stop()
    assert redis_client.keys("queue:*") == []  # no restart got through meanwhile
