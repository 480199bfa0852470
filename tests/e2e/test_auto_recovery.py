"""Automatic recovery end to end: a real Sidekiq of each line, the gem, a process SIGKILLed
mid-job; with no one asking, the supervisor pushes the lost job again, exactly once, and another
process runs it to completion, while a slow job on a live process is never touched."""

from __future__ import annotations

import time

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

pytestmark = pytest.mark.e2e
INTERVAL_SECONDS = 1


@pytest.fixture(params=LINES)
def line(request) -> int:
    return request.param


@pytest.fixture
def api(tmp_path, redis_client, line):
    """The service with automatic recovery on, every second."""
    require_sidekiq()
    settings = {
        "REDIS_URL": redis_test_url(),
        "SUPERVISOR_PROCESS_STALE_SECONDS": str(stale_seconds(line)),
        "SUPERVISOR_AUTO_RECOVER": "true",
        "SUPERVISOR_RECOVER_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
    }
    with (
        running_service(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, **settings) as service,
        httpx2.Client(base_url=service.url, timeout=10, trust_env=False) as client,
    ):
        yield client


def replacement(api, jid: str) -> tuple[str, str] | None:
    """The jid that runs ``jid`` again, and why, once recovery pushed it."""
    restarted = [event["detail"] for event in events(api, jid) if event["event"] == "restarted"]
    return (restarted[0]["new_jid"], restarted[0].get("recovered")) if restarted else None


@pytest.mark.timeout(240)
def test_a_job_lost_to_sigkill_runs_again_once_by_itself_and_a_slow_one_is_left_alone(
    api, redis_client, tmp_path, line
):
    env = sidekiq_env(api, client="gem", line=line)
    redis_client.set("e2e:sleep:lost", 1)
    redis_client.set("e2e:sleep:slow", 1)
    with sidekiq(env, tmp_path, redis_client, "victim") as victim:
        (lost,) = enqueue(env, [("CountedJob", ["lost"])])
        wait_until("the job starts", lambda: status(api, lost) == "started")
        (gone,) = redis_client.smembers("processes")
        victim.kill()

    with sidekiq(env, tmp_path, redis_client, "survivor"):
        (slow,) = enqueue(env, [("CountedJob", ["slow"])])
        wait_until("the slow job starts on the live process", lambda: status(api, slow) == "started")
        redis_client.delete("e2e:sleep:lost")  # the lost job's next run ends at once
        new_jid, why = wait_until(
            "recovery pushes the lost job", lambda: replacement(api, lost), timeout=stale_seconds(line) + 30
        )
        assert why == f"its process {gone.decode()} is gone (no heartbeat)"
        wait_until("the lost job runs to completion", lambda: status(api, new_jid) == "complete")
        time.sleep(3 * INTERVAL_SECONDS)  # passes that must find nothing more to do
        assert redis_client.get("e2e:done:lost") == b"1"
        assert status(api, slow) == "started" and replacement(api, slow) is None
        redis_client.delete("e2e:sleep:slow")
        wait_until("the slow job completes", lambda: status(api, slow) == "complete")
    assert redis_client.get("e2e:done:slow") == b"1"
    assert redis_client.llen("queue:default") == 0
