"""Time GET /api/v1/apps, the overview of every app, on a supervisor of many apps.

    python bench/apps_overview.py [--apps 50] [--servers 4] [--requests 200]

Starts ``--servers`` Redis servers of its own (``redis-server`` on free ports, in a temporary
folder, their databases spread over the apps: 50 apps do not fit in one server's 16 indexes) and
fills each app's database with what a busy Sidekiq keeps: five queues of 200 jobs, 50 retries,
20 scheduled, 300 dead, three processes with busy threads, today's counters. Each app's ledger
(SQLite files in the same folder) gets 500 jobs, 50 of them uncompleted. Then it runs a real
``sidekiq-supervisor serve`` on them and asks for the overview ``--requests`` times, one after
another on one kept-alive connection, as a page refreshing and a script polling would:

- every app's Redis answering (target: 100 ms);
- the last app's Redis accepting connections and never answering (a hung server): the answer
  waits for it until the overview's deadline (2 s), within the request deadline (8 s).

Printed: the median, p90, p99 and max in milliseconds, beside the target.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from ingest_seed import free_port, running_service  # noqa: E402
from tests.receivers import silent_server  # noqa: E402

QUEUES = ("default", "mailers", "critical", "low", "imports")
JOBS_PER_QUEUE = 200
LEDGER_JOBS = 500
UNCOMPLETED = 50
TARGET_MS = 100.0


@contextmanager
def redis_servers(folder: Path, count: int) -> Iterator[list[int]]:
    """``count`` Redis servers of our own (no persistence), their ports; stopped at the end."""
    ports, processes = [], []
    try:
        for number in range(count):
            port = free_port()
            directory = folder / f"redis-{number}"
            directory.mkdir(parents=True)
            command = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"]
            command += ["--dir", str(directory), "--loglevel", "warning"]
            processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
            ports.append(port)
        for port in ports:
            wait_for_redis(port)
        yield ports
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)


def wait_for_redis(port: int) -> None:
    deadline = time.monotonic() + 10
    client = redis.Redis(port=port)
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def fill_sidekiq(client: redis.Redis, app: int) -> None:
    """A busy Sidekiq 7's keys: queues, retries, scheduled, dead, processes, today's counters."""
    now = time.time()
    today = datetime.fromtimestamp(now, UTC).date()
    pipe = client.pipeline(transaction=False)
    pipe.flushdb()
    pipe.set(f"stat:processed:{today:%Y-%m-%d}", 10_000 + app)
    pipe.set(f"stat:failed:{today:%Y-%m-%d}", 100 + app)
    pipe.set("stat:processed", 5_000_000)
    pipe.set("stat:failed", 40_000)

    def job(jid: str, queue: str, at: float) -> str:
        item = {"class": "Billing::InvoiceJob", "args": [jid, {"account": 42}], "jid": jid, "queue": queue}
        return json.dumps({**item, "retry": True, "created_at": at, "enqueued_at": at})

    for queue in QUEUES:
        pipe.sadd("queues", queue)
        pipe.lpush(
            f"queue:{queue}", *(job(f"{queue}{n:020d}", queue, now - n) for n in range(JOBS_PER_QUEUE))
        )
    pipe.zadd("retry", {job(f"retry{n:019d}", "default", now): now + n for n in range(50)})
    pipe.zadd("schedule", {job(f"sched{n:019d}", "default", now): now + 60 + n for n in range(20)})
    pipe.zadd("dead", {job(f"dead{n:020d}", "default", now): now - n for n in range(300)})
    for process in range(3):
        identity = f"worker-{process}:{1000 + process}:{process:012x}"
        info = {
            "hostname": f"worker-{process}",
            "pid": 1000 + process,
            "identity": identity,
            "concurrency": 10,
        }
        pipe.sadd("processes", identity)
        pipe.hset(identity, mapping={"info": json.dumps(info), "busy": 3, "beat": now, "quiet": "false"})
    pipe.execute()


def fill_ledgers(url: str, names: list[str]) -> None:
    """Each app's ledger: ``LEDGER_JOBS`` jobs, ``UNCOMPLETED`` of them started by a gone process."""
    with httpx2.Client(base_url=url, timeout=60, trust_env=False) as client:
        for name in names:
            events = []
            for number in range(LEDGER_JOBS):
                jid = f"{name}-{number}"
                base = {"job_id": jid, "arguments": [number], "job_class": "Billing::InvoiceJob"}
                events.append({**base, "event": "queued"})
                events.append({**base, "event": "started", "worker": {"identity": "gone:1:000000000000"}})
                if number >= UNCOMPLETED:
                    events.append({**base, "event": "complete"})
            response = client.post(f"/apps/{name}/api/v1/events", json={"events": events})
            response.raise_for_status()


def timed_overviews(url: str, requests: int) -> tuple[list[float], dict[str, int]]:
    """``requests`` answers one after another, in milliseconds, and the redis states of the last."""
    times = []
    with httpx2.Client(base_url=url, timeout=30, trust_env=False) as client:
        states: dict[str, int] = {}
        for _ in range(requests):
            began = time.perf_counter()
            response = client.get("/api/v1/apps")
            times.append((time.perf_counter() - began) * 1000)
            response.raise_for_status()
            states = {}
            for entry in response.json()["data"]:
                states[entry["redis"]] = states.get(entry["redis"], 0) + 1
    return times, states


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def row(name: str, times: list[float], target: str, states: dict[str, int]) -> str:
    ordered = sorted(times)
    figures = (statistics.median(ordered), percentile(ordered, 0.9), percentile(ordered, 0.99), ordered[-1])
    measured = "  ".join(f"{value:8.1f}" for value in figures)
    redis_states = ", ".join(f"{count} {state}" for state, count in sorted(states.items()))
    return f"{name:34} {measured}  {target:>10}   {redis_states}"


def run(folder: Path, args: argparse.Namespace, hung_port: int | None) -> tuple[list[float], dict[str, int]]:
    """A service over the apps (the last one's Redis at ``hung_port`` if given), timed."""
    names = [f"app{number:02d}" for number in range(args.apps)]
    with redis_servers(folder / ("hung" if hung_port else "all"), args.servers) as ports:
        urls = []
        for number in range(args.apps):
            port, database = ports[number % len(ports)], number // len(ports)
            urls.append(f"redis://127.0.0.1:{port}/{database}")
            fill_sidekiq(redis.Redis(port=port, db=database), number)
        if hung_port is not None:
            urls[-1] = f"redis://127.0.0.1:{hung_port}/0"
        ledgers = folder / ("hung" if hung_port else "all") / "ledger.db"
        config = folder / ("hung.toml" if hung_port else "all.toml")
        config.write_text(
            "".join(f'[apps.{n}]\nredis_url = "{u}"\n\n' for n, u in zip(names, urls, strict=True))
        )
        os.environ["SUPERVISOR_CONFIG"] = str(config)
        os.environ["REDIS_URL"] = urls[0]
        with running_service(f"sqlite:///{ledgers}", 1) as (url, _server):
            fill_ledgers(url, names)
            # The first answer waits for each ledger's first reading; the next few settle the threads.
            timed_overviews(url, 5)
            return timed_overviews(url, args.hung_requests if hung_port else args.requests)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=50)
    parser.add_argument("--servers", type=int, default=4, help="Redis servers to spread the apps over")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--hung-requests", type=int, default=20, help="with one Redis hung (2 s each)")
    args = parser.parse_args()
    if args.apps > 16 * args.servers:
        parser.error("each Redis server holds 16 apps at most: add --servers")

    with tempfile.TemporaryDirectory(prefix="apps-overview-") as temporary, ExitStack() as stack:
        folder = Path(temporary)
        all_times, all_states = run(folder, args, None)
        hung_port = stack.enter_context(silent_server())
        hung_times, hung_states = run(folder, args, hung_port)

    print(f"GET /api/v1/apps, {args.apps} apps over {args.servers} Redis servers, times in ms")
    print(f"{'':34} {'median':>8}  {'p90':>8}  {'p99':>8}  {'max':>8}  {'target':>10}   redis states")
    print(row(f"every Redis answering (n={len(all_times)})", all_times, f"{TARGET_MS:g} ms", all_states))
    print(row(f"one Redis hung (n={len(hung_times)})", hung_times, "8 s", hung_states))


if __name__ == "__main__":
    main()
