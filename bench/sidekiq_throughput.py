"""A real Sidekiq draining no-op jobs with no middleware, with the seed's middlewares, and with the gem.

    python bench/sidekiq_throughput.py [--jobs 5000] [--rounds 3] [--concurrency 10]
                                       [--redis-url redis://127.0.0.1:6379/12]

For each client it flushes the Redis database, pushes the jobs one by one through Sidekiq's
client (timing the enqueue), starts one Sidekiq 6.4.1 process, and times the drain from the first
job fetched to the queue's end. Rounds run the clients in a rotating order; it prints the median
jobs/s of each client and its ratio to the median without middleware, then how many jobs the
supervisor (a real ``sidekiq-supervisor serve`` on SQLite) recorded. Needs Debian's ruby,
ruby-sidekiq and ruby-faraday.
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
import urllib.request
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_seed import free_port, wait_healthy  # noqa: E402

CLIENTS = ("none", "seed", "gem")


def drain(env: dict[str, str], client: redis.Redis, jobs: int, concurrency: int, workdir: str) -> float:
    """Seconds from the first job fetched to the queue's end, for one Sidekiq process."""
    command = [
        "sidekiq",
        "-r",
        str(HERE / "sidekiq" / "noop_app.rb"),
        "-c",
        str(concurrency),
        "-q",
        "default",
    ]
    with (Path(workdir) / f"sidekiq-{env['SUPERVISOR_CLIENT']}.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            remaining = client.llen("queue:default")
            now = time.monotonic()
            if first is None and remaining < jobs:
                first = now
            if remaining == 0 and first is not None:
                return now - first
            time.sleep(0.005)
    finally:
        process.terminate()
        process.wait(timeout=30)
    raise SystemExit("Sidekiq did not drain the queue in time")


def run_client(
    name: str, url: str, client: redis.Redis, args: argparse.Namespace, workdir: str
) -> tuple[float, float]:
    """Seconds to enqueue and to drain the jobs with one client's middlewares."""
    client.flushdb()
    env = {
        **os.environ,
        "REDIS_URL": args.redis_url,
        "SUPERVISOR_CLIENT": name,
        "SIDEKIQ_SUPERVISOR_HOST": url,
        "SIDEDIQ_SUPERVISOR_HOST": url,
        "http_proxy": "",
    }
    enqueue = subprocess.run(
        ["ruby", str(HERE / "sidekiq" / "enqueue.rb"), str(args.jobs)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return float(enqueue.stdout.strip().splitlines()[-1]), drain(
        env, client, args.jobs, args.concurrency, workdir
    )


def stored_jobs(url: str) -> int:
    with urllib.request.urlopen(f"{url}/api/v1/stats", timeout=10) as response:
        return json.load(response)["jobs"]["total"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="sidekiq-bench-")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service_env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir}/ledger.db",
        "REDIS_URL": args.redis_url,
    }
    serve = ["serve", "--port", str(port), "--log-level", "warning"]
    service = subprocess.Popen([sys.executable, "-m", "sidekiq_supervisor", *serve], env=service_env)
    client = redis.Redis.from_url(args.redis_url)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CLIENTS}
    try:
        wait_healthy(url)
        for round_number in range(args.rounds):
            order = CLIENTS[round_number % 3 :] + CLIENTS[: round_number % 3]
            for name in order:
                results[name].append(run_client(name, url, client, args, workdir))
        time.sleep(3)  # let the gem's last batches land
        stored = stored_jobs(url)
    finally:
        client.flushdb()
        service.terminate()
        service.wait(timeout=30)
    medians = {
        name: (statistics.median(e for e, _ in runs), statistics.median(d for _, d in runs))
        for name, runs in results.items()
    }
    base_enqueue, base_drain = medians["none"]
    print(
        f"{args.jobs:,} no-op jobs, Sidekiq concurrency {args.concurrency}, one process, "
        f"median of {args.rounds} rounds"
    )
    print(f"{'client':<8}{'enqueue jobs/s':>16}{'ratio':>8}{'drain jobs/s':>15}{'ratio':>8}")
    for name, (enqueue_seconds, drain_seconds) in medians.items():
        print(
            f"{name:<8}{args.jobs / enqueue_seconds:>16,.0f}{base_enqueue / enqueue_seconds:>8.0%}"
            f"{args.jobs / drain_seconds:>15,.0f}{base_drain / drain_seconds:>8.0%}"
        )
    expected = 2 * args.jobs * args.rounds
    print(f"jobs in the supervisor's ledger: {stored:,} (expected {expected:,}: the seed and gem runs)")


if __name__ == "__main__":
    main()
