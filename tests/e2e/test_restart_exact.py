"""A restart runs the very job that was lost, on each Sidekiq line, with the gem and the seed's middlewares.

A real Sidekiq runs four jobs held mid-run, and is killed with SIGKILL: an ActiveJob job whose
arguments hold a secret, a job with a secret hash, a job with an integer beyond 64 bits and the
deepest arguments Sidekiq can push, and a ``retry: false`` job with tags and a custom key. A new
Sidekiq process starts; the supervisor restarts the lost jobs; they run. What each job wrote
itself, and the payload Sidekiq fetched (recorded by a server middleware of the test app), prove
that each copy is the job that was lost, never its display.
"""

from __future__ import annotations

import json

import httpx2
import pytest

from sidekiq_supervisor.domain.payload import MAX_ARGUMENTS_DEPTH
from sidekiq_supervisor.services.job_payloads import PayloadSeal
from tests.conftest import redis_test_url
from tests.e2e.real_sidekiq import (
    LINES,
    enqueue,
    line_environment,
    require_sidekiq,
    sidekiq,
    sidekiq_env,
    stale_seconds,
    wait_until,
)
from tests.e2e.real_sidekiq import job_status as status
from tests.live_service import running_service

# Real Sidekiq processes (and the service as a process): not in the fast lane.
pytestmark = pytest.mark.e2e

BIG = 123456789012345678901234567890
SECRET = {"user_id": 7, "reset_token": "abc123"}
MASKED = {"user_id": 7, "reset_token": "[REDACTED]"}
WRAPPERS = {6: "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper", 8: "Sidekiq::ActiveJob::Wrapper"}


def nested(levels: int) -> list:
    value: list = ["bottom"]
    for _ in range(levels - 1):
        value = [value]
    return value


# Inside the args array: arguments as deep as Sidekiq can push.
DEEP = nested(MAX_ARGUMENTS_DEPTH - 1)


def restart_until(api, jids: set[str]) -> dict[str, str]:
    """POST restart until every jid of ``jids`` was restarted (their processes are taken for gone)."""
    restarted: dict[str, str] = {}

    def all_restarted() -> bool:
        report = api.post("/api/v1/jobs/restart").json()
        restarted.update({row["jid"]: row["new_jid"] for row in report["restarted"]})
        return jids <= set(restarted)

    wait_until("the lost jobs restart", all_restarted, timeout=60)
    return restarted


# Two Sidekiq boots and a stale window: generous, for a loaded machine.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("client", ["gem", "seed"])
@pytest.mark.parametrize("line", LINES)
def test_lost_jobs_run_again_exactly_as_they_were_pushed(line, client, tmp_path, redis_client):
    require_sidekiq("faraday", "active_job")
    line_env = line_environment(line, rails7=line == 8)  # ActiveJob 7.2: Sidekiq's own wrapper
    # The wrong unit on purpose: the unit must be learnt from the live process of each line.
    configured = "7" if line == 8 else "8"
    settings = {
        "REDIS_URL": redis_test_url(),
        "SUPERVISOR_SIDEKIQ_VERSION": configured,
        "SUPERVISOR_PROCESS_STALE_SECONDS": str(stale_seconds(line)),
        "SUPERVISOR_SECRET_KEY": PayloadSeal.new_key(),
    }
    with (
        running_service(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, **settings) as service,
        httpx2.Client(base_url=service.url, timeout=10, trust_env=False) as api,
    ):
        env = {**sidekiq_env(api, client), **line_env, "E2E_APP": "exact_jobs"}
        redis_client.set("e2e:hold", 1)
        with sidekiq(env, tmp_path, redis_client, "doomed", app="exact_jobs.rb", threads=6) as doomed:
            invoice, secret, exact, retryless = enqueue(
                env,
                [
                    ("InvoiceJob", [7, SECRET]),
                    ("ExactJob", [SECRET]),
                    ("ExactJob", [BIG, DEEP]),
                    ("RetrylessJob", ["r-1"]),
                ],
            )
            lost = {invoice, secret, exact, retryless}
            wait_until("the jobs start", lambda: all(status(api, jid) == "started" for jid in lost))
            doomed.kill()
        redis_client.delete("e2e:payloads", "e2e:ran")

        with sidekiq(env, tmp_path, redis_client, "rescuer", app="exact_jobs.rb", threads=6) as rescuer:
            copies = restart_until(api, lost)
            redis_client.delete("e2e:hold")
            wait_until("every copy runs", lambda: redis_client.llen("e2e:ran") >= 4, timeout=60)
            wait_until(
                "the copies complete",
                lambda: all(status(api, copies[jid]) == "complete" for jid in (invoice, secret, exact)),
            )
            ran = {entry["jid"]: entry for entry in map(json.loads, redis_client.lrange("e2e:ran", 0, -1))}
            fetched = {p["jid"]: p for p in map(json.loads, redis_client.lrange("e2e:payloads", 0, -1))}
            retry_set = redis_client.zcard("retry")
            dead_set = redis_client.zcard("dead")
            log = rescuer.log_text()

        # What each job itself received: the real secrets, the bignum and the deepest arguments.
        assert set(ran) >= set(copies.values()), log
        assert ran[copies[invoice]]["class"] == "InvoiceJob"
        assert ran[copies[invoice]]["args"] == [7, SECRET]
        assert ran[copies[secret]]["args"] == [SECRET]
        assert ran[copies[exact]]["args"] == [BIG, DEEP]
        assert ran[copies[retryless]]["args"] == ["r-1"]
        # What Sidekiq fetched: ActiveJob's wrapper, times in the line's own unit.
        wrapper = fetched[copies[invoice]]
        assert wrapper["class"] == WRAPPERS.get(line, WRAPPERS[6])
        stamp_type = int if line >= 8 else float
        assert all(type(p["created_at"]) is stamp_type for p in fetched.values())
        pushed_retryless = fetched[copies[retryless]]
        if client == "gem":
            # The payload keys the gem reported: the retry policy, tags and a custom key.
            assert wrapper["wrapped"] == "InvoiceJob"
            assert pushed_retryless["retry"] is False
            assert pushed_retryless["tags"] == ["vip"]
            assert pushed_retryless["tenant"] == {"id": 9}
            assert (retry_set, dead_set) == (0, 0)  # retry: false, as the job says
        else:
            # The seed's middlewares send class, args and queue: Sidekiq's default retry policy.
            assert pushed_retryless["retry"] is True
        # Readers still see the mask, on the copies too.
        for jid in (secret, invoice):
            document = api.get(f"/api/v1/jobs/{copies[jid]}").json()
            assert "abc123" not in json.dumps(document)
            assert document["restarted_from"] == jid
        assert api.get(f"/api/v1/jobs/{copies[secret]}").json()["arguments"] == [MASKED]
        assert api.get(f"/api/v1/jobs/{copies[invoice]}").json()["job_class"] == "InvoiceJob"
        assert "abc123" not in api.get("/api/v1/jobs", params={"limit": 100}).text
