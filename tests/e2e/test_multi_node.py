"""Several service processes behind a load balancer, sharing one PostgreSQL.

Two real ``serve`` processes on the same database get each job's reports spread across them
(the queued report on one, the start on the other, the completion on either, some sent to both),
concurrently from several threads. Whichever process is asked, the answers are the same and
exact: one row per job, every report in its history once, the status its reports decide.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx2
import pytest

from tests.conftest import redis_test_url
from tests.live_service import running_service

# Real Sidekiq processes (and the service as a process): not in the fast lane.
pytestmark = pytest.mark.e2e

JOBS = 60
T0 = 1_764_000_000.0


def reports(n: int) -> list[tuple[int, str, dict[str, str]]]:
    """(which node, route, form) for job ``n``: spread over both nodes, the start sent to both."""
    jid = f"node-job-{n:03d}"
    fields = {"arguments": json.dumps([n, f"user-{n}@example.com"]), "job_class": "NodeJob"}
    queued = (n % 2, "/api/v1/jobs", {**fields, "job_id": jid, "at": str(T0 + n)})
    started = {**fields, "at": str(T0 + n + 1)}
    steps = [queued, (0, f"/api/v1/jobs/{jid}/started", started), (1, f"/api/v1/jobs/{jid}/started", started)]
    if n % 3:
        steps.append(((n + 1) % 2, f"/api/v1/jobs/{jid}/complete", {**fields, "at": str(T0 + n + 2)}))
    return steps


def test_two_processes_on_one_postgresql_give_one_exact_ledger(empty_postgres_url, tmp_path):
    postgres_url = empty_postgres_url
    with ExitStack() as stack:
        nodes = []
        for name in ("node-a", "node-b"):
            (tmp_path / name).mkdir()
            service = running_service(postgres_url, tmp_path / name, REDIS_URL=redis_test_url())
            nodes.append(stack.enter_context(service))
        clients = [stack.enter_context(httpx2.Client(base_url=node.url, timeout=10)) for node in nodes]

        def send(n: int) -> list[int]:
            return [clients[node].post(route, data=form).status_code for node, route, form in reports(n)]

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = [status for answers in pool.map(send, range(JOBS)) for status in answers]

        answers = [
            client.get("/api/v1/jobs", params={"status": "all", "limit": 1000}).json() for client in clients
        ]
        histories = {
            n: clients[n % 2].get(f"/api/v1/jobs/node-job-{n:03d}/history").json() for n in range(JOBS)
        }

    assert set(statuses) <= {200, 201}
    assert answers[0] == answers[1], "both nodes read the same ledger"
    by_jid = {job["jid"]: job for job in answers[0]["data"]}
    assert len(by_jid) == JOBS
    for n in range(JOBS):
        job = by_jid[f"node-job-{n:03d}"]
        assert job["status"] == ("complete" if n % 3 else "started"), job
        assert job["attempts"] == 1, "the start sent to both nodes counts once"
        kinds = sorted(event["event"] for event in histories[n]["history"])
        assert kinds == sorted(["queued", "started"] + (["complete"] if n % 3 else [])), histories[n]
