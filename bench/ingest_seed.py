"""Seed-shaped ingest: wrk sends form-encoded queued/started/complete reports over 64 keep-alive
connections to a real ``sidekiq-supervisor serve``, then every acknowledged report is looked up.

    python bench/ingest_seed.py [--seconds 15] [--connections 64] [--database-url URL] [--workers N]

Without ``--database-url`` it runs on a fresh SQLite file. Prints reports/s, p50/p99 latency, and
whether every 2xx-acknowledged report is in the store; then the same traffic against a bare
Starlette app with the same routes (``bench/bare_app.py``) on the same uvicorn settings, and the
ratio. Needs Debian's ``wrk``.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import func, select

from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.schema import job_events

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the service did not become healthy")


def run_wrk(
    url: str,
    seconds: int,
    connections: int,
    script: str = "seed_reports.lua",
    env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Runs wrk with one of the bench's Lua scripts; the figures its ``done`` hook printed."""
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / script), url]
    env = {**(env or os.environ), "RUN_ID": uuid.uuid4().hex[:8]}  # fresh jids in a reused database
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    match = re.search(r"RESULT (.*)", output)
    if match is None:
        raise SystemExit(f"wrk printed no result:\n{output}")
    return {key: float(value) for key, value in (pair.split("=") for pair in match.group(1).split())}


def peak_rss_mib(pid: int) -> float:
    """The peak resident memory of a process and its children (uvicorn's workers), in MiB."""
    pids = [pid, *_children(pid)]
    peak_kib = 0
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kib += int(line.split()[1])
    return peak_kib / 1024


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def stored_events(database_url: str) -> int:
    engine = make_engine(database_url)
    with engine.connect() as connection:
        count = connection.execute(select(func.count()).select_from(job_events)).scalar_one()
    engine.dispose()
    return count


@contextmanager
def running_service(database_url: str, workers: int) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real ``sidekiq-supervisor serve`` on a free port: its URL and process, until the block ends."""
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    serve = ["serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    server = subprocess.Popen([sys.executable, "-m", "sidekiq_supervisor", *serve], env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=30)


def run_bare(args: argparse.Namespace) -> dict[str, float]:
    """The same wrk run against the bare app, with the service's uvicorn settings."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port)]
    command += ["--workers", str(args.workers), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(command, cwd=HERE)
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        return run_wrk(f"http://127.0.0.1:{port}", args.seconds, args.connections)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--database-url")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers")
    args = parser.parse_args()
    database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='ingest-bench-')}/bench.db"
    with running_service(database_url, args.workers) as (url, server):
        before = stored_events(database_url)
        result = run_wrk(url, args.seconds, args.connections)
        stored = stored_events(database_url) - before
        rss = peak_rss_mib(server.pid)
    bare = run_bare(args)
    acknowledged = int(result["requests"] - result["non2xx"])
    print(f"database / workers  {database_url.split(':')[0]} / {args.workers}")
    print(f"reports/s           {result['requests'] / result['seconds']:,.0f}")
    print(f"latency p50 / p99   {result['p50_us'] / 1000:.1f} ms / {result['p99_us'] / 1000:.1f} ms")
    print(f"non-2xx / errors    {int(result['non2xx'])} / {int(result['errors'])}")
    print(f"acknowledged        {acknowledged:,}")
    verdict = "every acknowledged report stored" if stored >= acknowledged else "REPORTS MISSING"
    print(f"stored              {stored:,}  ({verdict})")
    print(f"service peak RSS    {rss:,.0f} MiB")
    rate, bare_rate = (r["requests"] / r["seconds"] for r in (result, bare))
    print(f"bare Starlette      {bare_rate:,.0f} requests/s, p99 {bare['p99_us'] / 1000:.1f} ms")
    print(f"ratio to bare       {rate / bare_rate:.0%}")


if __name__ == "__main__":
    main()
