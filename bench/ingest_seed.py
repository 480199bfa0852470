"""Seed-shaped ingest: wrk sends form-encoded queued/started/complete reports over 64 keep-alive
connections to a real ``sidekiq-supervisor serve``, then every acknowledged report is looked up.

    python bench/ingest_seed.py [--seconds 15] [--connections 64] [--database-url URL] [--workers N]
                                [--server uvicorn|granian]
    python bench/ingest_seed.py --in-process [--reports 4000] [--rounds 5] [--connections 64]

Without ``--database-url`` it runs on a fresh SQLite file. Prints reports/s, p50/p99 latency, the
service's CPU per report (all its threads), and whether every 2xx-acknowledged report is in the
store; then the same traffic against a bare Starlette app with the same routes
(``bench/bare_app.py``) on the same server and settings (on uvicorn, ``serve``'s HTTP protocol),
its CPU per request, and the ratio; and the bare app on uvicorn's own ``httptools`` protocol.
With ``--server granian`` (PyPI's ``granian``, not a dependency) the service's app and the bare
app are served by granian instead, and the bare app also by uvicorn, so that ours on granian can
be set against the bare app on uvicorn too. Needs Debian's ``wrk``.

``--in-process`` calls the app's ASGI entry directly with the same reports (64 at a time, no
HTTP server, no wrk) and prints the CPU each report cost the event loop's thread and the others
(the group-commit writer, mostly), per round: our part of a request, without uvicorn's.
"""

from __future__ import annotations

import argparse
import asyncio
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
from typing import Any

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
    server_pid: int | None = None,
) -> dict[str, float]:
    """Runs wrk with one of the bench's Lua scripts; the figures its ``done`` hook printed, and
    with ``server_pid`` the server's CPU per request (``cpu_us``)."""
    threads = min(2, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "-s", str(HERE / script), url]
    env = {**(env or os.environ), "RUN_ID": uuid.uuid4().hex[:8]}  # fresh jids in a reused database
    cpu = cpu_seconds(server_pid) if server_pid is not None else 0.0
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    cpu = cpu_seconds(server_pid) - cpu if server_pid is not None else 0.0
    match = re.search(r"RESULT (.*)", output)
    if match is None:
        raise SystemExit(f"wrk printed no result:\n{output}")
    result = {key: float(value) for key, value in (pair.split("=") for pair in match.group(1).split())}
    result["cpu_us"] = cpu * 1e6 / max(result["requests"], 1)
    return result


def peak_rss_mib(pid: int) -> float:
    """The peak resident memory of a process and its children (uvicorn's workers), in MiB."""
    pids = [pid, *_children(pid)]
    peak_kib = 0
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak_kib += int(line.split()[1])
    return peak_kib / 1024


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a process and its children (uvicorn's workers) used so far.

    Per request, it is what a request cost the server, which its rate shows only when the server
    has the cores to itself (on a shared machine it still scattered by a third between runs)."""
    total_ticks = 0
    for each in [pid, *_children(pid)]:
        # The fields after the command's name (which is in parentheses and may hold spaces).
        fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
        total_ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return total_ticks / os.sysconf("SC_CLK_TCK")


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
def running_service(
    database_url: str, workers: int, server: str = "uvicorn"
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A real ``sidekiq-supervisor serve`` on a free port: its URL and process, until the block ends.

    On granian, the same app (``create_app``) served by granian instead (``serve`` runs uvicorn).
    """
    port = free_port()
    env = {**os.environ, "DATABASE_URL": database_url}
    if server == "granian":
        command = [*granian_command(port, workers), "--factory", "sidekiq_supervisor.web.app:create_app"]
        # serve's header deadline (SUPERVISOR_HEADER_TIMEOUT_SECONDS, 10 s), as granian takes it.
        command += ["--http1-header-read-timeout", "10000"]
    else:
        serve = ["serve", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
        command = [sys.executable, "-m", "sidekiq_supervisor", *serve]
    server_process = subprocess.Popen(command, env=env)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url)
        yield url, server_process
    finally:
        server_process.terminate()
        server_process.wait(timeout=30)


def granian_command(port: int, workers: int) -> list[str]:
    """granian serving an ASGI app over HTTP/1.1, as uvicorn does (the target is added after)."""
    command = [sys.executable, "-m", "granian", "--interface", "asgi", "--http", "1", "--no-ws"]
    return [*command, "--port", str(port), "--workers", str(workers), "--log-level", "warning"]


# The HTTP protocol ``serve`` gives uvicorn (header deadline, one write per turn of the loop).
SERVE_PROTOCOL = "sidekiq_supervisor.web.http_protocol:HeaderTimeoutProtocol"


def bare_command(server: str, port: int, workers: int, protocol: str = SERVE_PROTOCOL) -> list[str]:
    """The bare app on ``server``, with the settings ``serve`` gives that server (on uvicorn,
    ``protocol`` as its HTTP implementation: ``serve``'s, or uvicorn's own ``httptools``)."""
    if server == "granian":
        return [*granian_command(port, workers), "bare_app:app"]
    command = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port), "--http", protocol]
    return [*command, "--workers", str(workers), "--log-level", "warning", "--no-access-log"]


def run_bare(args: argparse.Namespace, server: str, protocol: str = SERVE_PROTOCOL) -> dict[str, float]:
    """The same wrk run against the bare app on ``server`` (and ``protocol``, on uvicorn)."""
    port = free_port()
    command = bare_command(server, port, args.workers, protocol)
    server_process = subprocess.Popen(command, cwd=HERE)
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        url = f"http://127.0.0.1:{port}"
        return run_wrk(url, args.seconds, args.connections, server_pid=server_process.pid)
    finally:
        server_process.terminate()
        server_process.wait(timeout=30)


SEED_FORM = (
    "arguments=%5B1234%2C%22customer-42%40example.com%22%2C%7B%22plan%22%3A%22pro%22%7D%5D"
    "&job_class=HardWorker&queue=default"
)


def seed_request(run: str, index: int) -> tuple[str, bytes]:
    """The path and form body of the ``index``-th report, as ``seed_reports.lua`` makes them."""
    job, step = divmod(index, 3)
    jid = f"{run}{job:016x}"
    if step == 0:
        return "/api/v1/jobs", f"{SEED_FORM}&job_id={jid}".encode()
    return f"/api/v1/jobs/{jid}/{('started', 'complete')[step - 1]}", SEED_FORM.encode()


async def call_app(app: Any, path: str, body: bytes, statuses: list[int]) -> None:
    """One report through the ASGI app, as uvicorn hands it over (the body in one message)."""
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/x-www-form-urlencoded")]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # no disconnect: the report is answered first
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)


async def in_process(args: argparse.Namespace, database_url: str) -> None:
    """CPU per report of the app called directly (no HTTP server), in rounds: the event loop's
    thread, and the rest of the process (the writer thread, mostly)."""
    os.environ["DATABASE_URL"] = database_url
    from sidekiq_supervisor.web.app import create_app

    app = create_app()
    run, statuses = uuid.uuid4().hex[:8], []
    async with app.router.lifespan_context(app):
        for round_ in range(args.rounds):
            pending = iter(seed_request(run, round_ * args.reports + i) for i in range(args.reports))

            async def connection(reports: Iterator[tuple[str, bytes]]) -> None:
                for path, body in reports:
                    await call_app(app, path, body, statuses)

            cpu, loop_cpu = time.process_time(), time.thread_time()
            await asyncio.gather(*(connection(pending) for _ in range(args.connections)))
            loop_cpu, cpu = time.thread_time() - loop_cpu, time.process_time() - cpu
            per_report = 1e6 / args.reports
            print(f"round {round_ + 1}  loop thread {loop_cpu * per_report:.1f} µs/report, ", end="")
            print(f"other threads {(cpu - loop_cpu) * per_report:.1f} µs/report")
    failed = [status for status in statuses if status not in (200, 201)]
    print(f"non-2xx {len(failed)} of {len(statuses)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--database-url")
    parser.add_argument("--workers", type=int, default=1, help="serve --workers")
    parser.add_argument(
        "--server", choices=("uvicorn", "granian"), default="uvicorn", help="pip install granian for it"
    )
    parser.add_argument(
        "--in-process", action="store_true", help="call the ASGI app directly: CPU per report, no server"
    )
    parser.add_argument("--reports", type=int, default=4000, help="--in-process: reports per round")
    parser.add_argument("--rounds", type=int, default=5, help="--in-process: rounds")
    args = parser.parse_args()
    if args.server == "granian" and args.workers != 1:
        parser.error("--server granian runs one process (serve's shared metrics directory is uvicorn's)")
    database_url = args.database_url or f"sqlite:///{tempfile.mkdtemp(prefix='ingest-bench-')}/bench.db"
    if args.in_process:
        import uvloop  # the event loop uvicorn runs the service on

        uvloop.run(in_process(args, database_url))
        return
    with running_service(database_url, args.workers, args.server) as (url, server):
        before = stored_events(database_url)
        result = run_wrk(url, args.seconds, args.connections, server_pid=server.pid)
        stored = stored_events(database_url) - before
        rss = peak_rss_mib(server.pid)
    bare = run_bare(args, args.server)
    bare_uvicorn = run_bare(args, "uvicorn") if args.server != "uvicorn" else bare
    bare_httptools = run_bare(args, "uvicorn", "httptools")
    acknowledged = int(result["requests"] - result["non2xx"])
    print(f"server / database   {args.server} / {database_url.split(':')[0]} / workers {args.workers}")
    print(f"reports/s           {result['requests'] / result['seconds']:,.0f}")
    print(f"latency p50 / p99   {result['p50_us'] / 1000:.1f} ms / {result['p99_us'] / 1000:.1f} ms")
    print(f"non-2xx / errors    {int(result['non2xx'])} / {int(result['errors'])}")
    print(f"acknowledged        {acknowledged:,}")
    verdict = "every acknowledged report stored" if stored >= acknowledged else "REPORTS MISSING"
    print(f"stored              {stored:,}  ({verdict})")
    print(f"service peak RSS    {rss:,.0f} MiB")
    print(f"service CPU         {result['cpu_us']:,.0f} µs/report (every thread)")
    rate, bare_rate, uvicorn_rate = (r["requests"] / r["seconds"] for r in (result, bare, bare_uvicorn))
    bare_p99 = bare["p99_us"] / 1000
    print(f"bare Starlette      {bare_rate:,.0f} requests/s, p99 {bare_p99:.1f} ms (on {args.server})")
    print(f"bare CPU            {bare['cpu_us']:,.0f} µs/request")
    print(f"ratio to bare       {rate / bare_rate:.0%}")
    if args.server != "uvicorn":
        p99 = bare_uvicorn["p99_us"] / 1000
        print(f"bare on uvicorn     {uvicorn_rate:,.0f} requests/s, p99 {p99:.1f} ms")
        print(f"ratio to that       {rate / uvicorn_rate:.0%}")
    plain_rate = bare_httptools["requests"] / bare_httptools["seconds"]
    plain = f"{plain_rate:,.0f} requests/s, p99 {bare_httptools['p99_us'] / 1000:.1f} ms"
    print(f"bare, uvicorn's own {plain}, {bare_httptools['cpu_us']:,.0f} µs/request (httptools)")
    print(f"ratio to that       {rate / plain_rate:.0%}")


if __name__ == "__main__":
    main()
