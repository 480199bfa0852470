"""Mixed load: seed reports at a fixed rate while people read, the way a team uses the service.

    python bench/mixed_load.py [--jobs 200000] [--rate 200] [--users 0,5,20] [--seconds 60]
                               [--poll 5] [--database-url URL] [--workers 1]

A real ``sidekiq-supervisor serve`` on a ledger of ``--jobs`` jobs (``bench/load_ledger.py``
fills a SQLite file once and each run serves a copy; ``--database-url`` serves a PostgreSQL
ledger you loaded). Senders keep ``--rate`` seed-shaped reports a second (form-encoded
queued / started / complete, as the seed's middlewares send them) for the whole run. Phase by
phase, ``--users`` simulated dashboard users join: each polls ``/``, ``/jobs``, ``/durations``,
``/sidekiq`` and ``/api/v1/stats`` in turn, one every ``--poll`` seconds, and one console loop
asks the API for jobs and durations back to back (what ``sidekiq-supervisor console`` does through
``JobManager``). Per phase it prints the report rate, the reports' p50 / p99, their ratio to the
phase without readers, and the readers' own rate and p50 / p99. The target (issue "Performance
under real use"): a rate ratio of at least 0.9 with 20 users. Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
from ingest_seed import running_service
from soak import Senders

# What one dashboard user's browser asks for, in turn (the pages refresh themselves).
USER_PATHS = ("/", "/jobs?status=uncompleted", "/durations", "/sidekiq", "/api/v1/stats")
# What the console asks, back to back: a filtered list and a durations summary.
CONSOLE_PATHS = (
    "/api/v1/jobs?status=completed&q=example.com&limit=20",
    "/api/v1/durations?from=started&limit=20",
    "/api/v1/jobs?status=uncompleted&limit=20",
)


@dataclass
class Latencies:
    """Request latencies (seconds) gathered by several threads."""

    values: list[float] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # What each failed request was and what it got, for the lines under the table.
    failures: Counter[str] = field(default_factory=Counter)

    def add(self, seconds: float, failure: str | None) -> None:
        with self.lock:
            self.values.append(seconds)
            if failure is not None:
                self.errors += 1
                self.failures[failure] += 1

    def take(self) -> tuple[list[float], int]:
        with self.lock:
            taken, errors = self.values, self.errors
            self.values, self.errors = [], 0
        return taken, errors


class Readers:
    """``users`` pollers and, with any user, one console loop, each on its own keep-alive client."""

    def __init__(self, url: str, users: int, poll: float) -> None:
        self._url = url
        self._stop = threading.Event()
        self.latencies = Latencies()
        loops = [
            threading.Thread(target=self._user, args=(n, users, poll), daemon=True) for n in range(users)
        ]
        self._threads = loops + ([threading.Thread(target=self._console, daemon=True)] if users else [])

    def __enter__(self) -> Readers:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _user(self, index: int, users: int, poll: float) -> None:
        # Users are spread over the poll interval, as real ones would be.
        if self._stop.wait(poll * index / max(users, 1)):
            return
        with httpx2.Client(base_url=self._url, timeout=60, trust_env=False) as client:
            for path in itertools.cycle(USER_PATHS):
                started = time.monotonic()
                self._get(client, path)
                if self._stop.wait(max(0.0, poll - (time.monotonic() - started))):
                    return

    def _console(self) -> None:
        with httpx2.Client(base_url=self._url, timeout=60, trust_env=False) as client:
            for path in itertools.cycle(CONSOLE_PATHS):
                if self._stop.is_set():
                    return
                self._get(client, path)

    def _get(self, client: httpx2.Client, path: str) -> None:
        started = time.monotonic()
        try:
            try:
                status = client.get(path).status_code
            except (httpx2.RemoteProtocolError, httpx2.ReadError):
                # The server closed the kept-alive connection as its idle timeout (5 s, uvicorn's
                # default) ran out, while this GET was on its way: a browser sends it again.
                status = client.get(path).status_code
            failure = None if status == 200 else f"{path}: {status}"
        except httpx2.HTTPError as exc:
            failure = f"{path}: {type(exc).__name__}"
        self.latencies.add(time.monotonic() - started, failure)


class ReaderProcess:
    """``Readers`` in a process of their own, for one phase: in the senders' process, their
    requests (the console loop's are back to back) held its interpreter, and the reports' measured
    latency included the senders' wait for it."""

    def __init__(self, url: str, users: int, poll: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._stop = context.Event()
        self._results: multiprocessing.Queue[tuple[list[float], int, Counter[str]]] = context.Queue()
        self._process = context.Process(
            target=_read_until_stopped, args=(url, users, poll, self._stop, self._results), daemon=True
        )
        self.latencies: list[float] = []
        self.errors = 0
        self.failures: Counter[str] = Counter()

    def __enter__(self) -> ReaderProcess:
        self._process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self.latencies, self.errors, self.failures = self._results.get(timeout=120)
        self._process.join(timeout=30)


def _read_until_stopped(
    url: str, users: int, poll: float, stop: Any, results: multiprocessing.Queue[Any]
) -> None:
    with Readers(url, users, poll) as readers:
        stop.wait()
    values, errors = readers.latencies.take()
    results.put((values, errors, readers.latencies.failures))


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile of ``values``, in milliseconds (0 when there are none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))] * 1000


def ledger_copy(jobs: int, folder: Path) -> str:
    """A SQLite ledger of ``jobs`` jobs to serve: a copy of the one ``load_ledger`` keeps."""
    kept = Path(f"/tmp/scale/ledger-{jobs}.db")
    if not kept.exists():  # filling a million jobs takes a minute or two: once
        subprocess.run(
            [sys.executable, str(Path(__file__).with_name("load_ledger.py")), "--jobs", str(jobs)], check=True
        )
    copy = folder / "ledger.db"
    shutil.copyfile(kept, copy)
    return f"sqlite:///{copy}"


def run(args: argparse.Namespace, url: str) -> None:
    """Every phase on one running service, the senders running throughout."""
    senders = Senders(
        url, argparse.Namespace(rate=args.rate, threads=args.threads, batch_share=0, batch_size=1)
    )
    senders.start()
    time.sleep(args.warmup)
    senders.take_window()
    baseline: tuple[float, float] | None = None
    failures: Counter[str] = Counter()
    print(f"{'users':>5} {'reports/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'rate ×':>7} {'p99 ×':>7}"
          f" {'reads/s':>8} {'read p50':>9} {'read p99':>9} {'errors':>6}")  # fmt: skip
    try:
        for users in args.users:
            with ReaderProcess(url, users, args.poll) as readers:
                time.sleep(args.seconds)
                window = senders.take_window()
            reads, errors = readers.latencies, readers.errors
            failures.update(readers.failures)
            rate = window.reports / args.seconds
            p50, p99 = percentile(window.latencies, 0.5), percentile(window.latencies, 0.99)
            baseline = baseline or (rate, p99)
            print(
                f"{users:>5} {rate:>10.1f} {p50:>8.1f} {p99:>8.1f} {rate / baseline[0]:>7.2f}"
                f" {p99 / baseline[1]:>7.2f} {len(reads) / args.seconds:>8.1f}"
                f" {percentile(reads, 0.5):>9.1f} {percentile(reads, 0.99):>9.1f} {errors:>6}",
                flush=True,
            )
    finally:
        senders.stop()
    for failure, count in sorted(failures.items()):
        print(f"failed reads: {failure} ×{count}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=200_000, help="jobs in the SQLite ledger served")
    parser.add_argument("--database-url", help="serve this (loaded) ledger instead of a SQLite copy")
    parser.add_argument("--rate", type=float, default=200, help="seed reports a second")
    parser.add_argument("--threads", type=int, default=8, help="sender threads")
    parser.add_argument("--users", type=lambda text: [int(n) for n in text.split(",")], default=[0, 5, 20])
    parser.add_argument("--seconds", type=float, default=60, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--poll", type=float, default=5, help="seconds between one user's requests")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers")
    args = parser.parse_args()
    if args.users[0] != 0:
        parser.error("--users must start with 0: the other phases are compared with writes alone")
    with tempfile.TemporaryDirectory() as folder:
        database_url = args.database_url or ledger_copy(args.jobs, Path(folder))
        print(
            f"ledger: {database_url}  ({args.jobs:,} jobs loaded)" if not args.database_url else database_url
        )
        print(f"{args.rate:g} seed reports/s from {args.threads} senders; users poll every {args.poll:g} s; "
              f"phases of {args.seconds:g} s; serve --workers {args.workers}")  # fmt: skip
        with running_service(database_url, args.workers) as (url, _server):
            run(args, url)


if __name__ == "__main__":
    main()
