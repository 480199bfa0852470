"""A real Sidekiq with the gem, while the supervisor is down, slow (answers after 5 s) or answering 500.

    python bench/gem_faults.py [--jobs 1500] [--rounds 5] [--payload-bytes 4000]
                               [--buffer-size 500] [--concurrency 10] [--faults down slow error]

It starts a Redis of its own, a real ``sidekiq-supervisor serve`` on SQLite, and the fault front of
the gem's fault tests (``tests/e2e/fault_front.py``) between them. For a reference, one Sidekiq
process without the gem runs the rounds. Then, for each fault, one Sidekiq 6.4.1 process with the
gem (``tests/e2e/fault_sidekiq_app.rb``: buffer_size as given, 0.1 s flushes, 3 s read timeout,
retries from 0.1 s to 0.5 s) runs a warm-up and the rounds with the supervisor healthy, then the
same rounds during the fault, then the supervisor recovers. Each round pushes ``--jobs`` no-op
jobs carrying ``--payload-bytes`` of arguments, and waits until they ran.

It prints, per fault: jobs/s during the fault against the healthy rounds of the same process;
Sidekiq's RSS before the fault, at its peak during it (sampled every 10 ms) and once recovered;
the reports recorded, still buffered and dropped during the fault (and those dropped during the
healthy rounds: a small bound overflows when the service ingests slower than Sidekiq reports), and
the failed requests; and the
seconds from recovery until the gem had delivered every buffered report (and how many events of the
fault's jobs the ledger then held). No assertions: the tests are tests/e2e/test_gem_faults.py.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from ingest_seed import free_port, wait_healthy  # noqa: E402
from tests.e2e.fault_front import Fault, FaultFront, fault_front  # noqa: E402
from tests.e2e.fault_sidekiq import Drain, Ledger, SidekiqApp, sidekiq_app, wait_for  # noqa: E402

WARM_UP_JOBS = 300
MIB = 1024


@dataclass(frozen=True)
class Figures:
    """One fault's figures."""

    fault: str
    healthy_jobs_per_second: float
    healthy_dropped: int
    fault_jobs_per_second: float
    rss_before_kb: int
    rss_peak_kb: int
    rss_end_kb: int
    recorded: int
    buffered: int
    dropped: int
    failed_requests: int
    recovery_seconds: float
    stored: int


def jobs_per_second(drains: list[Drain]) -> float:
    """Jobs over seconds, all rounds together."""
    return sum(drain.jobs for drain in drains) / sum(drain.seconds for drain in drains)


@contextmanager
def own_redis(workdir: Path) -> Iterator[str]:
    """A Redis server of the bench's own, keeping nothing on disk: the machine's is shared."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(workdir)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    try:
        wait_for("Redis answers", lambda: _pings(client), timeout=10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@contextmanager
def service(workdir: Path, redis_url: str) -> Iterator[tuple[str, Ledger]]:
    """``sidekiq-supervisor serve`` on a SQLite ledger of its own."""
    port = free_port()
    ledger = workdir / "ledger.db"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{ledger}", "REDIS_URL": redis_url}
    command = [
        sys.executable,
        "-m",
        "sidekiq_supervisor",
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    process = subprocess.Popen(command, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        yield url, Ledger(ledger)
    finally:
        process.terminate()
        process.wait(timeout=30)


def rounds(app: SidekiqApp, tag: str, args: argparse.Namespace) -> list[Drain]:
    """``args.rounds`` rounds of ``args.jobs`` jobs."""
    return [app.run(f"{tag}{number}", args.jobs, args.payload_bytes) for number in range(args.rounds)]


def without_gem(redis_url: str, workdir: Path, args: argparse.Namespace) -> float:
    """Jobs/s of the same rounds in a Sidekiq without a supervisor to report to (the gem idle)."""
    redis.Redis.from_url(redis_url).flushdb()
    with sidekiq_app(redis_url, "", workdir, concurrency=args.concurrency) as app:
        app.run("00w", WARM_UP_JOBS, args.payload_bytes)
        return jobs_per_second(rounds(app, "00r", args))


def under_fault(
    fault: Fault, front: FaultFront, ledger: Ledger, redis_url: str, workdir: Path, args: argparse.Namespace
) -> Figures:
    """One Sidekiq process: healthy rounds, the fault's rounds, then recovery."""
    redis.Redis.from_url(redis_url).flushdb()
    tag = f"{list(Fault).index(fault):x}"
    front.switch(Fault.HEALTHY)
    settings = {"buffer_size": str(args.buffer_size)}
    with sidekiq_app(redis_url, front.url, workdir, concurrency=args.concurrency, **settings) as app:
        app.run(f"{tag}w", WARM_UP_JOBS, args.payload_bytes)
        warm = app.fresh_stats()
        healthy = rounds(app, f"{tag}h", args)
        wait_for("the gem sends what it kept", lambda: app.fresh_stats()["buffered"] == 0, timeout=60)
        before, rss_before = app.fresh_stats(), app.rss_kb()
        front.switch(fault)
        during = rounds(app, f"{tag}f", args)
        recorded = 2 * args.jobs * args.rounds
        after = wait_for("every report is recorded", lambda: _recorded(app, before, recorded), timeout=30)
        recovered_at = time.monotonic()
        front.switch(Fault.HEALTHY)
        wait_for("the gem delivers what it kept", lambda: app.fresh_stats()["buffered"] == 0, 120, 0.01)
        recovery = time.monotonic() - recovered_at
        return Figures(
            fault=fault.value,
            healthy_jobs_per_second=jobs_per_second(healthy),
            healthy_dropped=before["dropped"] - warm["dropped"],
            fault_jobs_per_second=jobs_per_second(during),
            rss_before_kb=rss_before,
            rss_peak_kb=max(drain.peak_rss_kb for drain in during),
            rss_end_kb=app.rss_kb(),
            recorded=recorded,
            buffered=after["buffered"],
            dropped=after["dropped"] - before["dropped"],
            failed_requests=after["failed_requests"] - before["failed_requests"],
            recovery_seconds=recovery,
            stored=ledger.count(f"{tag}f"),
        )


def _recorded(app: SidekiqApp, before: dict, recorded: int) -> dict | None:
    stats = app.fresh_stats()
    acked = stats["delivered"] - before["delivered"]
    return stats if stats["dropped"] - before["dropped"] + stats["buffered"] + acked >= recorded else None


def print_figures(figures: list[Figures], reference: float, args: argparse.Namespace) -> None:
    """The table."""
    print(
        f"{args.rounds} rounds of {args.jobs:,} no-op jobs with {args.payload_bytes:,} bytes of arguments, "
        f"Sidekiq concurrency {args.concurrency}, buffer_size {args.buffer_size}; "
        f"without the gem: {reference:,.0f} jobs/s"
    )
    print(
        f"{'fault':<7}{'healthy j/s':>12}{'dropped':>8}{'fault j/s':>10}{'ratio':>7}"
        f"{'RSS MiB before/peak/end':>25}{'recorded':>9}{'buffered':>9}{'dropped':>8}"
        f"{'failed req':>11}{'recovery s':>11}{'in ledger':>10}"
    )
    for row in figures:
        ratio = row.fault_jobs_per_second / row.healthy_jobs_per_second
        rss = f"{row.rss_before_kb // MIB}/{row.rss_peak_kb // MIB}/{row.rss_end_kb // MIB}"
        print(
            f"{row.fault:<7}{row.healthy_jobs_per_second:>12,.0f}{row.healthy_dropped:>8,}"
            f"{row.fault_jobs_per_second:>10,.0f}{ratio:>7.0%}"
            f"{rss:>25}{row.recorded:>9,}{row.buffered:>9,}{row.dropped:>8,}"
            f"{row.failed_requests:>11}{row.recovery_seconds:>11.2f}{row.stored:>10,}"
        )
    speeds = [row.fault_jobs_per_second / row.healthy_jobs_per_second for row in figures]
    print(f"median fault/healthy speed ratio: {statistics.median(speeds):.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_500, help="jobs per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--payload-bytes", type=int, default=4_000)
    parser.add_argument("--buffer-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=10)
    faults = [Fault.DOWN.value, Fault.SLOW.value, Fault.ERROR.value]
    parser.add_argument("--faults", nargs="+", choices=faults, default=faults)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gem-faults-") as directory:
        workdir = Path(directory)
        with (
            own_redis(workdir) as redis_url,
            service(workdir, redis_url) as (url, ledger),
            fault_front(url) as front,
        ):
            reference = without_gem(redis_url, workdir, args)
            figures = [
                under_fault(Fault(name), front, ledger, redis_url, workdir, args) for name in args.faults
            ]
    print_figures(figures, reference, args)


if __name__ == "__main__":
    main()
