"""A real Sidekiq with the gem loaded, driven and measured for the gem's fault tests and bench.

Free of pytest, so that ``bench/gem_faults.py`` uses the very same harness. Jobs are pushed
straight into Sidekiq's Redis list (the server's middleware is what is under test, and a pushing
Ruby process would report ``queued`` through the same faults); each job counts itself done in
Redis. The gem's counters come from the app's stats thread (see ``fault_sidekiq_app.rb``), the
process's memory from ``/proc``, and what the supervisor stored from its ledger (SQLite).
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

APP = Path(__file__).parent / "fault_sidekiq_app.rb"
QUEUE = "default"
DONE_KEY = "faults:done"
STATS_KEY = "faults:stats"
JOB_CLASS = "FaultJob"
POLL_SECONDS = 0.01


class HarnessError(RuntimeError):
    """Something the harness waited for did not happen in time."""


def wait_for(what: str, check: Callable[[], Any], timeout: float, poll: float = 0.05) -> Any:
    """Poll ``check`` until it returns something truthy; raise naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise HarnessError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(poll)


def jids_for(tag: str, count: int) -> list[str]:
    """``count`` distinct jids, 24 characters long as Sidekiq's are, starting with ``tag``.

    The tag names a phase of a test, so the ledger is asked for a phase's jobs with one LIKE; the
    rest is the job's number, so a jid also tells in which order it was pushed.
    """
    width = 24 - len(tag)
    return [f"{tag}{number:0{width}x}" for number in range(count)]


def rss_kb(pid: int) -> int:
    """Resident memory of a process, in KiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise HarnessError(f"no VmRSS for process {pid}")


@dataclass
class Drain:
    """How one batch of jobs went through Sidekiq: how many, how long, and memory meanwhile."""

    jobs: int
    seconds: float
    finished_at: float  # monotonic
    peak_rss_kb: int
    # Wall-clock time (as the reports' "at") by which half of the jobs were seen done.
    halfway_at: float

    @property
    def jobs_per_second(self) -> float:
        """Jobs done per second, from the push to the last one done."""
        return self.jobs / self.seconds


@dataclass
class SidekiqApp:
    """A running ``sidekiq`` process of the fault app, with its Redis."""

    process: subprocess.Popen[bytes]
    log: Path
    redis: redis.Redis

    @property
    def pid(self) -> int:
        """The Sidekiq process's id."""
        return self.process.pid

    def rss_kb(self) -> int:
        """Its resident memory now, in KiB."""
        return rss_kb(self.pid)

    def log_text(self) -> str:
        """Its log (Sidekiq's and the gem's lines)."""
        return self.log.read_text(errors="replace")

    def stats(self) -> dict[str, Any]:
        """The gem's counters as the app last published them (every 50 ms)."""
        raw = self.redis.get(STATS_KEY)
        return json.loads(raw) if raw else {}

    def fresh_stats(self) -> dict[str, Any]:
        """The gem's counters, published after this call began."""
        asked = time.time()
        return wait_for("the app publishes the gem's stats", lambda: _newer(self.stats(), asked), timeout=10)

    def done(self) -> int:
        """How many jobs ran so far."""
        return int(self.redis.get(DONE_KEY) or 0)

    def push(self, tag: str, count: int, payload_bytes: int) -> list[str]:
        """Push ``count`` jobs (each with a payload of ``payload_bytes``) in one round trip."""
        jids = jids_for(tag, count)
        payload = "x" * payload_bytes
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd("queues", QUEUE)
        jobs = [_job(jid, number, payload, now) for number, jid in enumerate(jids)]
        # LPUSH puts the last of its items at the head, and Sidekiq pops from the tail: they run in order.
        pipe.lpush(f"queue:{QUEUE}", *jobs)
        pipe.execute()
        return jids

    def run(self, tag: str, count: int, payload_bytes: int, timeout: float = 60) -> Drain:
        """Push ``count`` jobs and wait until Sidekiq has run them all, sampling its memory."""
        target = self.done() + count
        halfway, halfway_at = target - count // 2, None
        peak = self.rss_kb()
        started = time.monotonic()
        self.push(tag, count, payload_bytes)
        deadline = started + timeout
        while (done := self.done()) < target:
            if halfway_at is None and done >= halfway:
                halfway_at = time.time()
            peak = max(peak, self.rss_kb())
            if time.monotonic() > deadline:
                raise HarnessError(f"Sidekiq ran {done - target + count} of {count} jobs in {timeout} s")
            time.sleep(POLL_SECONDS)
        finished = time.monotonic()
        return Drain(count, finished - started, finished, max(peak, self.rss_kb()), halfway_at or time.time())


def _newer(stats: dict[str, Any], than: float) -> dict[str, Any] | None:
    return stats if stats.get("at", 0) > than else None


def _job(jid: str, number: int, payload: str, now: float) -> str:
    """A Sidekiq 6 job hash, as Sidekiq::Client writes it."""
    job = {
        "class": JOB_CLASS,
        "args": [number, payload],
        "retry": False,
        "queue": QUEUE,
        "jid": jid,
        "created_at": now,
        "enqueued_at": now,
    }
    return json.dumps(job, separators=(",", ":"))


def _stop(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM (Sidekiq's clean shutdown), then SIGKILL after ``grace`` seconds."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextmanager
def sidekiq_app(
    redis_url: str,
    supervisor_url: str,
    workdir: Path,
    concurrency: int = 10,
    line_env: dict[str, str] | None = None,
    **settings: str,
) -> Iterator[SidekiqApp]:
    """The fault app in a ``sidekiq`` process reporting to ``supervisor_url``, once it beats.

    ``line_env`` selects the Sidekiq line (``real_sidekiq.line_environment``); ``settings`` become
    the app's FAULTS_* variables (``buffer_size=...`` sets FAULTS_BUFFER_SIZE).
    """
    client = redis.Redis.from_url(redis_url)
    env = {
        **os.environ,
        **(line_env or {}),
        "REDIS_URL": redis_url,
        "SIDEKIQ_SUPERVISOR_HOST": supervisor_url,
        # The front is on 127.0.0.1: a proxy from the environment must not get in between.
        "http_proxy": "",
        "HTTP_PROXY": "",
        **{f"FAULTS_{name.upper()}": value for name, value in settings.items()},
    }
    log = workdir / f"sidekiq-{uuid.uuid4().hex[:8]}.log"
    command = ["sidekiq", "-r", str(APP), "-c", str(concurrency), "-q", QUEUE, "-t", "1"]
    before = client.smembers("processes")
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    app = SidekiqApp(process, log, client)
    try:
        wait_for("Sidekiq beats", lambda: _started(app, before), timeout=30, poll=0.1)
        yield app
    finally:
        _stop(process)
        client.close()


def _started(app: SidekiqApp, before: set[bytes]) -> bool:
    if app.process.poll() is not None:
        raise HarnessError(f"sidekiq exited with {app.process.returncode}:\n{app.log_text()[-3000:]}")
    return bool(app.redis.smembers("processes") - before) and bool(app.redis.get(STATS_KEY))


class Ledger:
    """The service's SQLite ledger, read directly: what the supervisor really stored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self, tag: str) -> dict[str, set[str]]:
        """The kinds of event stored for each job of a phase (jids starting with ``tag``)."""
        found: dict[str, set[str]] = {}
        # Before the service's first write the table may not be there yet: nothing stored.
        with suppress(sqlite3.OperationalError), closing(self._connect()) as connection:
            rows = connection.execute("SELECT jid, kind FROM job_events WHERE jid LIKE ?", (f"{tag}%",))
            for jid, kind in rows:
                found.setdefault(jid, set()).add(kind)
        return found

    def count(self, tag: str) -> int:
        """How many events of a phase's jobs are stored."""
        return len(self.times(tag))

    def times(self, tag: str) -> list[float]:
        """When (the reports' ``at``, epoch seconds) each stored event of a phase's jobs happened."""
        with suppress(sqlite3.OperationalError), closing(self._connect()) as connection:
            rows = connection.execute("SELECT at FROM job_events WHERE jid LIKE ?", (f"{tag}%",))
            return [at / 1_000_000 for (at,) in rows]
        return []

    def _connect(self) -> sqlite3.Connection:
        # Read-only, so the test never takes a write lock the service's writer could wait on.
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
