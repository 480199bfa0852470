"""A real Sidekiq draining no-op jobs with no middleware, with the seed's middlewares, and with the gem.

    python bench/sidekiq_throughput.py [--jobs 5000] [--rounds 3] [--concurrency 10]
                                       [--clients none seed gem] [--split-cpus]
                                       [--gem-before DIR] [--redis-url redis://127.0.0.1:6379/12]

For each client it flushes the Redis database, pushes the jobs one by one through Sidekiq's
client (timing the enqueue), starts one Sidekiq 6.4.1 process, and times the drain from the first
job fetched to the queue's end. Rounds run the clients in a rotating order; it prints the median
jobs/s of each client and its ratio to the median without middleware, the CPU time per job of
the Sidekiq process (during the drain) and of the service (whole round), then how many jobs the
supervisor (a real ``sidekiq-supervisor serve`` on SQLite) recorded, and how many reports the gem
said it dropped because its buffer was full (read from its shutdown warning, in the enqueuing
process's output and in Sidekiq's logs, which are kept in the bench's temporary directory).

``--split-cpus`` puts Sidekiq, the enqueuing process and a Redis of the bench's own on CPU 0 and
the service on CPU 1 (with taskset), as when the supervisor runs on a machine of its own: the
ratios then show what the middlewares cost the app, without the service competing for its CPU.
``--gem-before DIR`` adds the client ``gem-before``: the gem loaded from DIR, another copy of
``clients/ruby/lib`` (e.g. ``git archive HEAD~3 clients/ruby/lib | tar -x -C /tmp/before``), so that
a change to the gem is measured against the gem before it in the same rounds.
Needs Debian's ruby, ruby-sidekiq and ruby-faraday.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from ingest_seed import free_port, wait_healthy  # noqa: E402

CLIENTS = ("none", "seed", "gem")
# --split-cpus: Sidekiq, its Redis and the enqueuing process share one CPU; the service has the
# other, as if it ran on a machine of its own (as it does in production).
APP_CPU, SERVICE_CPU = "0", "1"
# The gem's warning at shutdown when its full buffer dropped reports (Reporter#shutdown).
DROPPED = re.compile(r"sidekiq-supervisor: (\d+) reports dropped in all")


def pinned(command: list[str], cpu: str | None) -> list[str]:
    """``command`` run on one CPU only (with util-linux's taskset), or as it is."""
    return ["taskset", "-c", cpu, *command] if cpu is not None else command


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dropped_reports(output: str) -> int:
    """Reports the gem said (at shutdown) that it dropped, in a process's log."""
    return sum(int(count) for count in DROPPED.findall(output))


def drain(
    name: str, env: dict[str, str], client: redis.Redis, args: argparse.Namespace, workdir: str
) -> tuple[float, float, int]:
    """Seconds from the first job fetched to the queue's end, the CPU seconds Sidekiq used, and
    the reports the gem dropped in Sidekiq (known once it has exited, after its last flush)."""
    command = [
        "sidekiq",
        "-r",
        str(HERE / "sidekiq" / "noop_app.rb"),
        "-c",
        str(args.concurrency),
        "-q",
        "default",
    ]
    # One log per client, each round's appended: the gem's drops are read from it.
    log_path = Path(workdir) / f"sidekiq-{name}.log"
    with log_path.open("ab") as log:
        logged = log.tell()
        command = pinned(command, args.app_cpu)
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
    drained = None
    try:
        first = None
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            remaining = client.llen("queue:default")
            now = time.monotonic()
            if first is None and remaining < args.jobs:
                first = now
                cpu_at_first = cpu_seconds(process.pid)
            if remaining == 0 and first is not None:
                drained = now - first, cpu_seconds(process.pid) - cpu_at_first
                break
            time.sleep(0.005)
    finally:
        process.terminate()
        process.wait(timeout=30)
    if drained is None:
        raise SystemExit("Sidekiq did not drain the queue in time")
    with log_path.open("rb") as log:
        log.seek(logged)
        return *drained, dropped_reports(log.read().decode(errors="replace"))


@dataclass(frozen=True)
class Run:
    """One client's round: wall-clock seconds, CPU seconds of Sidekiq and of the service, and the
    reports the gem dropped (buffer full) while enqueuing and in Sidekiq."""

    enqueue: float
    drain: float
    sidekiq_cpu: float
    service_cpu: float
    enqueue_dropped: int = 0
    sidekiq_dropped: int = 0


def run_client(
    name: str, url: str, client: redis.Redis, args: argparse.Namespace, workdir: str, service_pid: int
) -> Run:
    """Enqueue and drain the jobs with one client's middlewares."""
    client.flushdb()
    env = {
        **os.environ,
        "REDIS_URL": args.redis_url,
        "SUPERVISOR_CLIENT": "gem" if name == "gem-before" else name,
        "SUPERVISOR_GEM_LIB": args.gem_before if name == "gem-before" else "",
        "SIDEKIQ_SUPERVISOR_HOST": url,
        "SIDEDIQ_SUPERVISOR_HOST": url,
        "http_proxy": "",
    }
    service_cpu = cpu_seconds(service_pid)
    enqueue = subprocess.run(
        pinned(["ruby", str(HERE / "sidekiq" / "enqueue.rb"), str(args.jobs)], args.app_cpu),
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    drain_seconds, sidekiq_cpu, sidekiq_dropped = drain(name, env, client, args, workdir)
    # The seconds are the last line enqueue.rb prints; the gem may log after it, at exit.
    output = enqueue.stdout + enqueue.stderr
    seconds = [line for line in enqueue.stdout.splitlines() if re.fullmatch(r"[\d.e-]+", line.strip())]
    return Run(
        float(seconds[-1]),
        drain_seconds,
        sidekiq_cpu,
        cpu_seconds(service_pid) - service_cpu,
        dropped_reports(output),
        sidekiq_dropped,
    )


def start_redis(workdir: str) -> tuple[subprocess.Popen[bytes], int]:
    """A Redis server of the bench's own, on the app's CPU, keeping nothing on disk."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    command += ["--dir", workdir]
    process = subprocess.Popen(pinned(command, APP_CPU), stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            return process, port
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def stored_jobs(url: str) -> int:
    with urllib.request.urlopen(f"{url}/api/v1/stats", timeout=10) as response:
        return json.load(response)["jobs"]["total"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS))
    parser.add_argument(
        "--split-cpus",
        action="store_true",
        help="Sidekiq and a Redis of the bench's own on CPU 0, the service on CPU 1",
    )
    parser.add_argument(
        "--gem-before",
        metavar="DIR",
        help="also run the gem loaded from DIR (a copy of clients/ruby/lib) as client gem-before",
    )
    args = parser.parse_args()
    if args.gem_before:
        args.gem_before = str(Path(args.gem_before).resolve())
        args.clients.append("gem-before")
    args.app_cpu = APP_CPU if args.split_cpus else None
    workdir = tempfile.mkdtemp(prefix="sidekiq-bench-")
    own_redis = start_redis(workdir) if args.split_cpus else None
    if own_redis is not None:
        args.redis_url = f"redis://127.0.0.1:{own_redis[1]}/0"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    service_env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{workdir}/ledger.db",
        "REDIS_URL": args.redis_url,
    }
    serve = ["serve", "--port", str(port), "--log-level", "warning"]
    service_cpu = SERVICE_CPU if args.split_cpus else None
    service = subprocess.Popen(
        pinned([sys.executable, "-m", "sidekiq_supervisor", *serve], service_cpu), env=service_env
    )
    client = redis.Redis.from_url(args.redis_url)
    results: dict[str, list[Run]] = {name: [] for name in args.clients}
    try:
        wait_healthy(url)
        for round_number in range(args.rounds):
            shift = round_number % len(args.clients)
            for name in args.clients[shift:] + args.clients[:shift]:
                results[name].append(run_client(name, url, client, args, workdir, service.pid))
        time.sleep(3)  # let the gem's last batches land
        stored = stored_jobs(url)
    finally:
        client.flushdb()
        service.terminate()
        service.wait(timeout=30)
        if own_redis is not None:
            own_redis[0].terminate()
            own_redis[0].wait(timeout=30)
    medians = {name: median_run(runs) for name, runs in results.items()}
    base = medians.get("none")
    placement = "service on CPU 1, the rest on CPU 0" if args.split_cpus else "all on the same CPUs"
    print(
        f"{args.jobs:,} no-op jobs, Sidekiq concurrency {args.concurrency}, one process, "
        f"median of {args.rounds} rounds; {placement}"
    )
    print(
        f"{'client':<11}{'enqueue jobs/s':>16}{'ratio':>8}{'drain jobs/s':>15}{'ratio':>8}"
        f"{'Sidekiq CPU µs/job':>20}{'service CPU µs/job':>20}"
    )
    for name, run in medians.items():
        enqueue_ratio = f"{base.enqueue / run.enqueue:.0%}" if base else "-"
        drain_ratio = f"{base.drain / run.drain:.0%}" if base else "-"
        print(
            f"{name:<11}{args.jobs / run.enqueue:>16,.0f}{enqueue_ratio:>8}"
            f"{args.jobs / run.drain:>15,.0f}{drain_ratio:>8}"
            f"{run.sidekiq_cpu / args.jobs * 1e6:>20,.0f}{run.service_cpu / args.jobs * 1e6:>20,.0f}"
        )
    reporting = len([name for name in args.clients if name != "none"])
    expected = reporting * args.jobs * args.rounds
    print(f"jobs in the supervisor's ledger: {stored:,} (expected {expected:,}: the seed and gem runs)")
    for name, runs in results.items():
        enqueue_dropped = sum(run.enqueue_dropped for run in runs)
        sidekiq_dropped = sum(run.sidekiq_dropped for run in runs)
        if enqueue_dropped or sidekiq_dropped:
            print(
                f"reports {name} dropped (buffer full) in {len(runs)} rounds: {enqueue_dropped:,} "
                f"while enqueuing, {sidekiq_dropped:,} in Sidekiq (logs in {workdir})"
            )


def median_run(runs: list[Run]) -> Run:
    """Each figure's median over the rounds."""
    fields = Run.__dataclass_fields__
    return Run(*(statistics.median(getattr(run, field) for run in runs) for field in fields))


if __name__ == "__main__":
    main()
