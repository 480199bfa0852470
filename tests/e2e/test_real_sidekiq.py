"""End to end with a real Sidekiq: jobs pushed and run by Sidekiq 6.4.1, 7.3.9 and 8.1.7 report
through the seed's middlewares or the gem; the supervisor answers, tells running jobs from dead
ones, and restarts the dead."""

from __future__ import annotations

import httpx2
import pytest

from tests.conftest import redis_test_url
from tests.e2e.real_sidekiq import (
    LINES,
    enqueue,
    events,
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


@pytest.fixture(params=LINES)
def line(request) -> int:
    """The Sidekiq line (6, 7 or 8) the test runs on."""
    return request.param


@pytest.fixture
def api(tmp_path, redis_client, line):
    """The service on a new SQLite ledger, reading the tests' Redis as Sidekiq's."""
    require_sidekiq("faraday")
    settings = {
        "REDIS_URL": redis_test_url(),
        "SUPERVISOR_SIDEKIQ_VERSION": str(line),
        "SUPERVISOR_PROCESS_STALE_SECONDS": str(stale_seconds(line)),
    }
    with (
        running_service(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, **settings) as service,
        httpx2.Client(base_url=service.url, timeout=10, trust_env=False) as client,
    ):
        yield client


def liveness(api) -> dict[str, str]:
    return {row["jid"]: row["liveness"] for row in api.get("/api/v1/liveness").json()["data"]}


# Sidekiq boots, a kill and a stale window: generous, for a loaded machine.
@pytest.mark.timeout(240)
def test_seed_middlewares_with_a_real_sidekiq_record_run_classify_and_restart(
    api, redis_client, tmp_path, line
):
    env = sidekiq_env(api, line=line)
    redis_client.set("e2e:sleep:nap", 1)
    with sidekiq(env, tmp_path, redis_client, "first") as first:
        quick = enqueue(env, [("QuickJob", [n, f"user{n}@example.com"]) for n in range(5)])
        (flaky,) = enqueue(env, [("FlakyOnceJob", ["ORD-7"])])
        (sleepy,) = enqueue(env, [("SleepyJob", ["nap"])])

        wait_until("the quick jobs complete", lambda: all(status(api, jid) == "complete" for jid in quick))
        wait_until(
            "the flaky and sleepy jobs start",
            lambda: {status(api, flaky), status(api, sleepy)} == {"started"},
        )
        durations = api.get("/api/v1/durations", params={"from": "queued"}).json()
        assert {row["jid"] for row in durations["data"]} == set(quick)
        for row in durations["data"]:
            assert 0 < row["started_to_completion_seconds"] <= row["queued_to_completion_seconds"] < 30
        found = api.get("/api/v1/jobs", params={"q": "USER3@example", "status": "completed"}).json()["data"]
        assert [row["jid"] for row in found] == [quick[3]]

        # The seed's middlewares report no worker identity: Sidekiq's work hash, rewritten at each
        # heartbeat, shows who runs what; until the next beat a fresh start may be running.
        wait_until("the sleepy job shows as running", lambda: liveness(api).get(sleepy) == "running")
        wait_until("the failed job shows as not running", lambda: liveness(api).get(flaky) == "unknown")

        redis_client.set("e2e:allow:ORD-7", 1)
        restart = api.post("/api/v1/jobs/restart").json()
        assert [row["jid"] for row in restart["restarted"]] == [flaky]
        assert [row["jid"] for row in restart["skipped"]] == [sleepy]
        assert restart["skipped"][0]["reason"].startswith("running")
        new_flaky = restart["restarted"][0]["new_jid"]

        wait_until("the restarted job completes in Sidekiq", lambda: status(api, new_flaky) == "complete")
        assert api.get(f"/api/v1/jobs/{new_flaky}").json()["restarted_from"] == flaky
        assert api.get(f"/api/v1/jobs/{flaky}").status_code == 404
        history = api.get(f"/api/v1/jobs/{flaky}/history").json()["history"]
        assert [entry["event"] for entry in history][-1] == "restarted"

        first.kill()  # mid-job: Sidekiq's open-source fetch loses the sleeping job

    wait_until(
        "the killed process's job is no longer taken for running",
        lambda: liveness(api).get(sleepy) == "unknown",
        timeout=stale_seconds(line) + 15,
    )
    redis_client.delete("e2e:sleep:nap")
    restart = api.post("/api/v1/jobs/restart").json()
    assert [row["jid"] for row in restart["restarted"]] == [sleepy]
    new_sleepy = restart["restarted"][0]["new_jid"]

    with sidekiq(env, tmp_path, redis_client, "second"):
        wait_until("the recovered job completes", lambda: status(api, new_sleepy) == "complete")
    assert api.get("/api/v1/liveness").json()["data"] == []


@pytest.mark.timeout(240)
def test_the_gem_with_a_real_sidekiq_reports_workers_and_failures_and_a_killed_job_is_recovered(
    api, redis_client, tmp_path, line
):
    env = sidekiq_env(api, client="gem", line=line)
    redis_client.set("e2e:sleep:nap", 1)
    with sidekiq(env, tmp_path, redis_client, "first") as first:
        (process,) = redis_client.smembers("processes")
        quick = enqueue(env, [("QuickJob", [n, f"user{n}@example.com"]) for n in range(5)])
        (flaky,) = enqueue(env, [("FlakyOnceJob", ["ORD-9"])])
        (sleepy,) = enqueue(env, [("SleepyJob", ["nap"])])

        wait_until("the quick jobs complete", lambda: all(status(api, jid) == "complete" for jid in quick))
        failed = wait_until(
            "the flaky job fails", lambda: [e for e in events(api, flaky) if e["event"] == "failed"]
        )
        assert failed[0]["detail"]["error"] == {
            "class": "ArgumentError",
            "message": "order ORD-9 is not ready",
        }
        assert status(api, flaky) == "started"
        wait_until("the sleepy job starts", lambda: status(api, sleepy) == "started")
        worker = api.get(f"/api/v1/jobs/{sleepy}").json()["worker"]
        assert worker["identity"] == process.decode()
        assert worker["pid"] == first.process.pid
        wait_until("the failed job shows as orphaned", lambda: liveness(api).get(flaky) == "orphaned")
        assert liveness(api)[sleepy] == "running"

        first.kill()

    wait_until(
        "the killed job shows as orphaned",
        lambda: liveness(api).get(sleepy) == "orphaned",
        timeout=stale_seconds(line) + 15,
    )
    redis_client.set("e2e:allow:ORD-9", 1)
    redis_client.delete("e2e:sleep:nap")
    restart = api.post("/api/v1/jobs/restart").json()
    assert sorted(row["jid"] for row in restart["restarted"]) == sorted([flaky, sleepy])
    assert restart["skipped"] == []
    new_jids = [row["new_jid"] for row in restart["restarted"]]

    with sidekiq(env, tmp_path, redis_client, "second"):
        wait_until(
            "both restarted jobs complete", lambda: all(status(api, jid) == "complete" for jid in new_jids)
        )
    assert api.get("/api/v1/liveness").json()["data"] == []
