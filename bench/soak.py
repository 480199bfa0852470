"""Soak: a real ``sidekiq-supervisor serve`` under a steady load for a long while, watched for
memory growth and latency drift.

    python bench/soak.py [--seconds 600] [--rate 200] [--batch-share 0.2] [--batch-size 50]
                         [--threads 8] [--interval 10] [--database-url URL]

Senders keep a fixed request rate (not as fast as possible: a saturated service only measures
its queue) of the seed's form reports (queued, started, complete per job) mixed with the gem's
JSON batches. Every ``--interval`` seconds it samples the service's RSS and the window's p50 and
p99 latency, and prints a row. At the end: a verdict on memory (flat, or growing by so many MiB
a minute) and on p99 (stable, or drifting), and whether every acknowledged report is stored.
Without ``--database-url`` it runs on a fresh SQLite file. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
from ingest_seed import running_service, stored_events

ARGUMENTS = '[1234,"customer-42@example.com",{"plan":"pro"}]'
FORM = {"arguments": ARGUMENTS, "job_class": "HardWorker", "queue": "default"}
# Memory counts as flat while the growth projected over the whole run stays below both of these.
FLAT_MIB = 8.0
FLAT_SHARE = 0.05
# p99 counts as stable while the second half's median window stays within this factor of the
# first half's, or within the floor: a few milliseconds either way is noise on a shared machine.
P99_DRIFT = 1.5
P99_FLOOR_MS = 10.0


@dataclass
class Window:
    """What the senders saw since the last sample (swapped out at each sample)."""

    latencies: list[float] = field(default_factory=list)
    reports: int = 0
    failures: int = 0
    late: int = 0


@dataclass(frozen=True)
class Sample:
    """One row of the table."""

    at: float
    requests: int
    reports: int
    failures: int
    late: int
    p50_ms: float
    p99_ms: float
    rss_mib: float
    # The service's CPU use over the window (100 = one core), and the machine's 1-minute load
    # average: a p99 spike with a busy machine and a steady service CPU is someone else's load.
    cpu_percent: float
    load: float


class Senders:
    """Threads that together send ``rate`` requests a second, each on its own keep-alive client."""

    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self._url = url
        self._args = args
        self._run = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()
        self._window = Window()
        self._stop = threading.Event()
        self.acknowledged = 0
        self._threads = [
            threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(args.threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def take_window(self) -> Window:
        with self._lock:
            window, self._window = self._window, Window()
        return window

    def _loop(self, index: int) -> None:
        interval = self._args.threads / self._args.rate
        batch_every = round(1 / self._args.batch_share) if self._args.batch_share > 0 else 0
        due = time.monotonic() + index * interval / self._args.threads  # spread the threads out
        job = step = 0
        with httpx2.Client(base_url=self._url, timeout=30, trust_env=False) as client:
            while not self._stop.is_set():
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                late = delay < -1.0  # more than a second behind: the service (or we) can't keep up
                due = max(due + interval, time.monotonic() - 1.0)
                step += 1
                if batch_every and step % batch_every == 0:
                    self._send(client, late, *self._batch(f"{self._run}-{index}-b{step}"))
                else:
                    self._send(client, late, *self._seed_report(f"{self._run}-{index}-{job // 3}", job % 3))
                    job += 1

    def _seed_report(self, jid: str, step: int) -> tuple[str, dict[str, object], int]:
        if step == 0:
            return "/api/v1/jobs", {"data": {**FORM, "job_id": jid}}, 1
        return f"/api/v1/jobs/{jid}/{('started', 'complete')[step - 1]}", {"data": FORM}, 1

    def _batch(self, prefix: str) -> tuple[str, dict[str, object], int]:
        now, kinds = time.time(), ("queued", "started", "complete")
        events = [
            {
                "event": kinds[n % 3],
                "job_id": f"{prefix}-{n // 3}",
                "arguments": ARGUMENTS,
                "job_class": "Batch",
                "at": now + (n % 3) / 1000,
            }
            for n in range(self._args.batch_size)
        ]
        request = {"json": {"events": events}, "headers": {"Prefer": "return=minimal"}}
        return "/api/v1/events", request, len(events)

    def _send(
        self, client: httpx2.Client, late: bool, path: str, request: dict[str, object], reports: int
    ) -> None:
        start = time.monotonic()
        try:
            ok = client.post(path, **request).status_code < 300  # type: ignore[arg-type]
        except httpx2.HTTPError:
            ok = False
        elapsed = time.monotonic() - start
        with self._lock:
            self._window.latencies.append(elapsed)
            self._window.late += late
            if ok:
                self._window.reports += reports
                self.acknowledged += reports
            else:
                self._window.failures += 1


def _pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [pid, *(int(c) for c in (children.read_text().split() if children.exists() else []))]


def rss_mib(pid: int) -> float:
    """Resident memory of the process and its children now, in MiB."""
    total_kib = 0
    for each in _pids(pid):
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time used so far by the process and its children."""
    ticks = 0
    for each in _pids(pid):
        # Fields after the command name (which may hold spaces): utime and stime are 14th and 15th.
        fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def load_average() -> float:
    """The machine's 1-minute load average."""
    return float(Path("/proc/loadavg").read_text().split()[0])


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def sample(senders: Senders, pid: int, started: float, cpu_before: float, interval: float) -> Sample:
    window = senders.take_window()
    return Sample(
        at=time.monotonic() - started,
        requests=len(window.latencies),
        reports=window.reports,
        failures=window.failures,
        late=window.late,
        p50_ms=percentile(window.latencies, 0.50) * 1000,
        p99_ms=percentile(window.latencies, 0.99) * 1000,
        rss_mib=rss_mib(pid),
        cpu_percent=(cpu_seconds(pid) - cpu_before) / interval * 100,
        load=load_average(),
    )


def print_row(row: Sample, interval: float) -> None:
    print(
        f"{row.at:7.0f} {row.requests / interval:9.0f} {row.reports / interval:10.0f} {row.failures:8d}"
        f" {row.late:6d} {row.p50_ms:8.1f} {row.p99_ms:8.1f} {row.rss_mib:9.1f}"
        f" {row.cpu_percent:7.0f} {row.load:6.2f}",
        flush=True,
    )


def slope_per_minute(rows: list[Sample]) -> float:
    """Least-squares slope of RSS over time, in MiB a minute."""
    if len(rows) < 2:
        return 0.0
    return statistics.linear_regression([r.at for r in rows], [r.rss_mib for r in rows]).slope * 60


def memory_verdict(steady: list[Sample], seconds: float) -> str:
    """FLAT while the RSS trend, projected over the whole run, stays small."""
    if not steady:
        return "memory   no samples"
    slope = slope_per_minute(steady)
    projected = slope * seconds / 60
    first, last = steady[0].rss_mib, steady[-1].rss_mib
    word = "FLAT" if projected < max(FLAT_MIB, FLAT_SHARE * first) else "GROWING"
    trend = f"slope {slope:+.2f} MiB/min, {projected:+.1f} MiB over {seconds:.0f} s"
    return f"memory   {word}: {first:.1f} -> {last:.1f} MiB after warm-up; {trend}"


def p99_verdict(steady: list[Sample]) -> str:
    """STABLE while the second half's median p99 stays within P99_DRIFT (or the floor) of the first's."""
    half = len(steady) // 2
    if not half:
        return "p99      too few windows to judge (run longer than 3 intervals)"
    first = statistics.median(r.p99_ms for r in steady[:half])
    second = statistics.median(r.p99_ms for r in steady[half:])
    word = "STABLE" if second <= max(first * P99_DRIFT, first + P99_FLOOR_MS) else "DRIFTING"
    worst = max(steady, key=lambda r: r.p99_ms)
    halves = f"median {first:.1f} ms (first half) -> {second:.1f} ms (second half)"
    return f"p99      {word}: {halves}; worst window {worst.p99_ms:.1f} ms at {worst.at:.0f} s"


def verdicts(rows: list[Sample], seconds: float) -> list[str]:
    """The memory and p99 verdicts over the windows after warm-up (the first sixth, at least one)."""
    steady = rows[max(1, len(rows) // 6) :] if len(rows) > 2 else rows
    lines = [memory_verdict(steady, seconds), p99_verdict(steady)]
    if steady:
        cpu = [r.cpu_percent for r in steady]
        busiest = max(r.load for r in steady)
        lines.append(
            f"cpu      service {min(cpu):.0f}-{max(cpu):.0f}% of a core; machine load average up to "
            f"{busiest:.2f} on {os.cpu_count()} cores"
            + (
                " (others were busy too: read p99 with that in mind)"
                if busiest > (os.cpu_count() or 1)
                else ""
            )
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--rate", type=float, default=200, help="requests a second, all senders together")
    parser.add_argument("--batch-share", type=float, default=0.2, help="share of requests that are batches")
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='soak-')}/soak.db"
    rows: list[Sample] = []
    with running_service(database_url, 1) as (url, server):
        before = stored_events(database_url)
        senders = Senders(url, args)
        print(
            f"soak: {args.seconds:.0f} s on {database_url.split(':')[0]}, {args.rate:.0f} requests/s "
            f"({args.batch_share:.0%} batches of {args.batch_size}), {args.threads} senders"
        )
        print(
            f"{'t (s)':>7} {'req/s':>9} {'reports/s':>10} {'failures':>8} {'late':>6} "
            f"{'p50 ms':>8} {'p99 ms':>8} {'RSS MiB':>9} {'CPU %':>7} {'load':>6}"
        )
        started = time.monotonic()
        senders.start()
        try:
            while (elapsed := time.monotonic() - started) < args.seconds:
                cpu_before = cpu_seconds(server.pid)
                time.sleep(window := min(args.interval, args.seconds - elapsed))
                rows.append(sample(senders, server.pid, started, cpu_before, window))
                print_row(rows[-1], window)
        finally:
            senders.stop()
        stored = stored_events(database_url) - before
    for line in verdicts(rows, args.seconds):
        print(line)
    failures = sum(r.failures for r in rows)
    late = sum(r.late for r in rows)
    print(f"requests failures {failures}; sends more than 1 s behind schedule {late}")
    verdict = "every acknowledged report stored" if stored >= senders.acknowledged else "REPORTS MISSING"
    print(f"stored   {stored:,} events for {senders.acknowledged:,} acknowledged reports ({verdict})")


if __name__ == "__main__":
    main()
