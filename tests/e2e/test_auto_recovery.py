"""Automatic recovery end to end: a real Sidekiq of each line, the gem, processes SIGKILLed
mid-job. With no one asking, the supervisor pushes each lost job again, exactly once, and another
process runs it to completion, while a slow job on a live process is never touched; a job that
kills every process that runs it is recovered ``SUPERVISOR_RECOVER_MAX_ATTEMPTS`` times, then
quarantined in Sidekiq's Dead set; two ``serve`` processes on one PostgreSQL recover each job
once; a ``serve`` SIGKILLed mid-recovery and started again pushes nothing twice."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from itertools import pairwise
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import psycopg
import pytest

from sidekiq_supervisor.sidekiq_redis import keys
from sidekiq_supervisor.sidekiq_redis.enqueue import RESTART_PUSH
from tests.conftest import postgres_database, redis_test_url
from tests.e2e.real_sidekiq import (
    LINES,
    enqueue,
    events,
    require_sidekiq,
    respawned_sidekiq,
    sidekiq,
    sidekiq_env,
    stale_seconds,
    wait_until,
)
from tests.e2e.real_sidekiq import job_status as status
from tests.live_service import running_service
from tests.reliability.proxy import tcp_proxy
from tests.reliability.service import service_process

pytestmark = pytest.mark.e2e
INTERVAL_SECONDS = 1
# Small, to keep the poison pill's case short: original → copy → copy, then the Dead set.
MAX_ATTEMPTS = 2


@pytest.fixture(params=LINES)
def line(request) -> int:
    return request.param


def recovery_settings(line: int, **extra: str) -> dict[str, str]:
    """The service's environment: automatic recovery on, every second, for a Sidekiq of ``line``."""
    return {
        "REDIS_URL": redis_test_url(),
        "SUPERVISOR_PROCESS_STALE_SECONDS": str(stale_seconds(line)),
        "SUPERVISOR_AUTO_RECOVER": "true",
        "SUPERVISOR_RECOVER_INTERVAL_SECONDS": str(INTERVAL_SECONDS),
        **extra,
    }


def api_client(url: str) -> httpx2.Client:
    return httpx2.Client(base_url=url, timeout=10, trust_env=False)


@contextmanager
def recovering_service(database_url: str, workdir: Path, line: int, **extra: str) -> Iterator[httpx2.Client]:
    """A client of ``serve`` on ``database_url`` with automatic recovery on, every second."""
    require_sidekiq()
    with (
        running_service(database_url, workdir, **recovery_settings(line, **extra)) as service,
        api_client(service.url) as client,
    ):
        yield client


@pytest.fixture
def api(tmp_path, redis_client, line):
    """The service with automatic recovery on, every second."""
    with recovering_service(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, line) as client:
        yield client


@pytest.fixture
def fresh_postgres_url() -> Iterator[str]:
    """A PostgreSQL database of this test alone, empty (``serve`` migrates it), dropped at the end."""
    with postgres_database(migrate=False) as url:
        yield url


def replacement(api, jid: str) -> tuple[str, str] | None:
    """The jid that runs ``jid`` again, and why, once recovery pushed it."""
    restarted = restarts(api, jid)
    return (restarted[0]["new_jid"], restarted[0].get("recovered")) if restarted else None


def restarts(api, jid: str) -> list[dict]:
    """The details of ``jid``'s ``restarted`` events (one per push of it)."""
    return [event["detail"] for event in events(api, jid) if event["event"] == "restarted"]


def replacements(api, jids: list[str]) -> list[str] | None:
    """The jid that runs each of ``jids`` again, once recovery pushed them all."""
    found = [replacement(api, jid) for jid in jids]
    pushed = [one[0] for one in found if one is not None]
    return pushed if len(pushed) == len(jids) else None


def recoveries(api) -> list[dict]:
    """What automatic recovery did, as ``GET /api/v1/recoveries`` lists it."""
    response = api.get("/api/v1/recoveries", params={"limit": 1000})
    assert response.status_code == 200, response.text
    return response.json()["data"]


def queued_jids(redis_client) -> list[str]:
    """The jids waiting in Sidekiq's queue ``default``."""
    return [json.loads(member)["jid"] for member in redis_client.lrange("queue:default", 0, -1)]


# Sidekiq's own API reading its Dead set: what /sidekiq/morgue shows, what Retry Now takes.
READ_DEAD_SET = """
require "sidekiq"
require "sidekiq/api"
require "json"
puts JSON.generate(Sidekiq::DeadSet.new.map { |entry|
  {"class" => entry.display_class, "args" => entry.display_args, "error_class" => entry["error_class"],
   "error_message" => entry["error_message"], "at" => entry.at.to_f}
})
"""


def dead_set_as_sidekiq_reads_it(env: dict[str, str]) -> list[dict]:
    done = subprocess.run(
        ["ruby", "-e", READ_DEAD_SET],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


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


@pytest.mark.timeout(420)
def test_a_poison_pill_is_recovered_max_attempts_times_then_quarantined_in_the_dead_set(
    tmp_path, redis_client, line
):
    """``PoisonJob`` SIGKILLs the process that runs it, every time, under a Sidekiq kept up as
    systemd keeps a service up. Recovery pushes it again ``MAX_ATTEMPTS`` times along original →
    copy → copy; lost once more, it goes to Sidekiq's Dead set with the reason (in the form the
    line's own API reads), its ledger history says ``quarantined``, and nothing pushes it again:
    it ran ``MAX_ATTEMPTS + 1`` times and took as many processes down."""
    ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    attempts = {"SUPERVISOR_RECOVER_MAX_ATTEMPTS": str(MAX_ATTEMPTS)}
    with recovering_service(ledger, tmp_path, line, **attempts) as api:
        env = sidekiq_env(api, client="gem", line=line)
        before = time.time()
        with respawned_sidekiq(env, tmp_path, "poisoned") as workers:
            (original,) = enqueue(env, [("PoisonJob", ["pill"])])
            wait_until(
                "the poison pill is quarantined",
                lambda: any(done["event"] == "quarantined" for done in recoveries(api)),
                timeout=(MAX_ATTEMPTS + 1) * (stale_seconds(line) + 30),
            )
            time.sleep(3 * INTERVAL_SECONDS)  # passes that must push nothing more
            done = recoveries(api)
            waiting = queued_jids(redis_client)
            runs = int(redis_client.get("e2e:runs:pill") or 0)
            deaths = list(workers.deaths)
        after = time.time()
        recovered = sorted(
            (one for one in done if one["event"] == "recovered"), key=lambda one: one["attempt"]
        )
        quarantined = [one for one in done if one["event"] == "quarantined"]
        chain = [original, *(one["new_jid"] for one in recovered)]
        histories = {jid: events(api, jid) for jid in chain}

    assert runs == MAX_ATTEMPTS + 1, "each push ran once, and nothing was pushed after the quarantine"
    assert deaths == [-9] * (MAX_ATTEMPTS + 1), "each run SIGKILLed its process"
    assert waiting == []
    # The chain: each recovery pushed the copy the one before made, numbered along it.
    assert [one["attempt"] for one in recovered] == list(range(1, MAX_ATTEMPTS + 1)), done
    assert [one["jid"] for one in recovered] == chain[:-1], done
    assert len(set(chain)) == MAX_ATTEMPTS + 1
    (quarantine,) = quarantined
    assert quarantine["jid"] == chain[-1] and quarantine["new_jid"] is None
    reason = quarantine["reason"]
    assert f"lost {MAX_ATTEMPTS + 1} times" in reason and f"recovered {MAX_ATTEMPTS} times" in reason
    assert "SUPERVISOR_RECOVER_MAX_ATTEMPTS" in reason
    killed = set()
    for attempt, (jid, copy) in enumerate(pairwise(chain), start=1):
        history = histories[jid]
        assert [event["event"] for event in history] == ["queued", "started", "restarted"], history
        detail = history[-1]["detail"]
        assert (detail["new_jid"], detail["attempt"]) == (copy, attempt)
        gone = re.fullmatch(r"its process (\S+) is gone \(no heartbeat\)", detail["recovered"])
        assert gone, detail
        killed.add(gone[1])
    assert len(killed) == MAX_ATTEMPTS, "each run was lost with a process of its own"
    last = histories[chain[-1]]
    assert [event["event"] for event in last] == ["queued", "started", "quarantined"], last
    assert last[-1]["detail"] == {
        "reason": reason,
        "job_class": "PoisonJob",
        "queue": "default",
        "arguments": '["pill"]',
    }
    # In Sidekiq's Dead set, where its users look: the job as it was pushed, and why it is there.
    (member,) = redis_client.zrange(keys.DEAD, 0, -1)
    dead = json.loads(member)
    assert (dead["class"], dead["args"], dead["queue"]) == ("PoisonJob", ["pill"], "default")
    assert (dead["error_class"], dead["error_message"]) == ("SidekiqSupervisor::Quarantined", reason)
    failed_at = dead["failed_at"] / 1000 if line >= 8 else dead["failed_at"]  # Sidekiq 8 counts ms
    assert before <= failed_at <= after
    (entry,) = dead_set_as_sidekiq_reads_it(env)
    assert {name: entry[name] for name in ("class", "args", "error_class", "error_message")} == {
        "class": "PoisonJob",
        "args": ["pill"],
        "error_class": "SidekiqSupervisor::Quarantined",
        "error_message": reason,
    }
    assert before <= entry["at"] <= after


# Jobs lost at once in the cases that check each is recovered once.
LOST_JOBS = 5


@pytest.mark.timeout(300)
def test_two_serve_processes_on_one_postgresql_recover_each_lost_job_once(
    fresh_postgres_url, tmp_path, redis_client
):
    """Two ``serve`` processes on one PostgreSQL database, both recovering every second: each of
    the jobs lost to one SIGKILL is pushed again once (one ``restarted`` event each, nothing extra
    in the queue) and runs once more, whichever process led the pass.

    Sidekiq 6 only: what keeps the two processes from both pushing a job is in PostgreSQL (the
    advisory lock, the claim of the original) and in Redis (the per-original marker), the same
    whichever Sidekiq runs the jobs; what differs by line (the payload pushed, the units of its
    times, the heartbeats) is proven on every line by the other cases. Line 6 beats every 5 s, so
    its jobs are taken for lost soonest."""
    line = 6
    names = [f"lost-{n}" for n in range(LOST_JOBS)]
    with ExitStack() as stack:
        apis = []
        for node in ("node-a", "node-b"):
            (tmp_path / node).mkdir()
            apis.append(stack.enter_context(recovering_service(fresh_postgres_url, tmp_path / node, line)))
        env = sidekiq_env(apis[0], client="gem", line=line)
        for name in names:
            redis_client.set(f"e2e:sleep:{name}", 1)
        with sidekiq(env, tmp_path, redis_client, "victim", threads=LOST_JOBS) as victim:
            lost = enqueue(env, [("CountedJob", [name]) for name in names])
            wait_until("the jobs start", lambda: all(status(apis[0], jid) == "started" for jid in lost))
            victim.kill()
        for name in names:
            redis_client.delete(f"e2e:sleep:{name}")  # their next runs end at once

        with sidekiq(env, tmp_path, redis_client, "survivor", threads=LOST_JOBS):
            copies = wait_until(
                "recovery pushes every lost job",
                lambda: replacements(apis[1], lost),
                timeout=stale_seconds(line) + 30,
            )
            wait_until(
                "the copies complete", lambda: all(status(apis[0], jid) == "complete" for jid in copies)
            )
            time.sleep(3 * INTERVAL_SECONDS)  # passes of both processes that must find nothing to do
            pushes = [[restarts(api, jid) for jid in lost] for api in apis]
            listed = [recoveries(api) for api in apis]
            waiting = queued_jids(redis_client)

    assert {name: redis_client.get(f"e2e:done:{name}") for name in names} == dict.fromkeys(names, b"1")
    for restarted in pushes:  # as each process reads the ledger
        assert [len(each) for each in restarted] == [1] * LOST_JOBS, restarted
        assert [each[0]["new_jid"] for each in restarted] == copies
    assert listed[0] == listed[1], "both processes read one record"
    assert sorted((one["jid"], one["new_jid"]) for one in listed[0]) == sorted(zip(lost, copies, strict=True))
    assert len(set(copies)) == LOST_JOBS
    assert waiting == []


@pytest.mark.timeout(300)
def test_a_serve_killed_mid_recovery_and_started_again_pushes_nothing_twice(
    fresh_postgres_url, tmp_path, redis_client
):
    """``serve`` SIGKILLed between a recovery's push and its record, then started again: every
    lost job runs once more, none twice.

    The window hit is the one only the per-original Redis marker covers: push done, ledger not
    committed. ``serve`` reaches Redis through a proxy that lets the pass's pushes (one pipeline
    of the script that sets an original's marker and pushes its copy, an EVALSHA per lost job)
    reach Redis, then hangs the link before the answers get back. The pass waits for them inside
    its ledger transaction: the test sees the copies in the queue, the markers set, the originals'
    rows locked by the claims and the ledger still saying they are lost, and SIGKILLs ``serve``
    there. PostgreSQL rolls the claims back. ``serve`` started again, with Redis reached
    directly, takes the originals for lost again, claims and pushes them again: each marker
    answers with its first copy's jid instead of pushing, and that copy is recorded as the
    replacement.

    Sidekiq 6 only: the window is between the supervisor, its PostgreSQL and Redis, the same
    whichever Sidekiq runs the jobs (see the case of two ``serve`` processes)."""
    line = 6
    jobs = 3
    names = [f"lost-{n}" for n in range(jobs)]
    redis_url = urlsplit(redis_test_url())
    # The pushes themselves: EVALSHA of the script (a pipeline first asks SCRIPT EXISTS, let through).
    push_script = redis_client.script_load(RESTART_PUSH)
    with tcp_proxy(redis_url.hostname or "127.0.0.1", redis_url.port or 6379) as proxy:
        hung = proxy.hang_after(b"EVALSHA\r\n$40\r\n" + push_script.encode())
        proxied = redis_url._replace(netloc=f"127.0.0.1:{proxy.port}").geturl()
        require_sidekiq()
        settings = recovery_settings(line, REDIS_URL=proxied)
        with service_process(fresh_postgres_url, tmp_path, **settings) as serve:
            with api_client(serve.url) as api:
                env = sidekiq_env(api, client="gem", line=line)
                for name in names:
                    redis_client.set(f"e2e:sleep:{name}", 1)
                with sidekiq(env, tmp_path, redis_client, "victim", threads=jobs) as victim:
                    lost = enqueue(env, [("CountedJob", [name]) for name in names])
                    wait_until("the jobs start", lambda: all(status(api, jid) == "started" for jid in lost))
                    victim.kill()
                for name in names:
                    redis_client.delete(f"e2e:sleep:{name}")  # their next runs end at once
                wait_until("a recovery push reaches Redis", hung.is_set, timeout=stale_seconds(line) + 30)
                markers = wait_until(
                    "their markers",
                    lambda: len(found := redis_client.keys(keys.restart_marker("*"))) == jobs and found,
                )
                first_copies = {
                    marker.decode().removeprefix(keys.restart_marker("")): redis_client.get(marker).decode()
                    for marker in markers
                }
                # Pushed in Redis, not recorded in the ledger: the claims are held, uncommitted (for
                # the 5 s serve waits on a Redis command before it gives up and rolls back).
                assert sorted(queued_jids(redis_client)) == sorted(first_copies.values())
                assert sorted(first_copies) == sorted(lost)
                assert all(claim_held(fresh_postgres_url, jid) for jid in lost)
                assert all(status(api, jid) == "started" and restarts(api, jid) == [] for jid in lost)
                serve.kill()

            serve.env["REDIS_URL"] = redis_test_url()
            serve.start()
            with api_client(serve.url) as api:
                env = sidekiq_env(api, client="gem", line=line)
                with sidekiq(env, tmp_path, redis_client, "survivor", threads=jobs):
                    copies = wait_until(
                        "recovery pushes every lost job", lambda: replacements(api, lost), timeout=30
                    )
                    wait_until(
                        "the copies complete", lambda: all(status(api, jid) == "complete" for jid in copies)
                    )
                    time.sleep(3 * INTERVAL_SECONDS)  # passes that must find nothing to do
                    restarted = [restarts(api, jid) for jid in lost]
                    waiting = queued_jids(redis_client)

    assert {name: redis_client.get(f"e2e:done:{name}") for name in names} == dict.fromkeys(names, b"1")
    assert [len(each) for each in restarted] == [1] * jobs, restarted
    assert copies == [first_copies[jid] for jid in lost], (
        "the copies pushed before the kill are the replacements"
    )
    assert len(set(copies)) == jobs
    assert waiting == []


def claim_held(database_url: str, jid: str) -> bool:
    """Whether a transaction holds ``jid``'s ledger row (a restart's claim, not yet committed)."""
    with psycopg.connect(database_url.replace("postgresql+psycopg://", "postgresql://")) as connection:
        try:
            connection.execute("SELECT 1 FROM jobs WHERE jid = %s FOR UPDATE NOWAIT", (jid,))
        except psycopg.errors.LockNotAvailable:
            return True
        finally:
            connection.rollback()
    return False
