"""Automatic recovery, timed: from a SIGKILL to the lost jobs running again, and what a pass costs.

    python bench/recovery.py [--quick] [--scenarios a,b,c] [--profiles default,short]
                             [--stale 60] [--interval 15] [--real-jobs 1,100] [--lost 10000]
                             [--lost-processes 10] [--ledger-jobs 1000000] [--few-lost 10]
                             [--passes 5] [--cut 1000] [--database-url URL]
                             [--redis-url redis://127.0.0.1:6379/N]

Each scenario runs once per settings profile: ``default`` is SUPERVISOR_PROCESS_STALE_SECONDS=60
and SUPERVISOR_RECOVER_INTERVAL_SECONDS=15 (or ``--stale``/``--interval``), so a lost job should be
pushed again within stale + interval = 75 s of its process's last heartbeat; ``short`` is 8 s and
1 s (two heartbeats of Sidekiq 6, as the end-to-end tests use).

A. Real jobs lost to a SIGKILL (``--real-jobs``, default 1 and 100). A real
   ``sidekiq-supervisor serve`` with SUPERVISOR_AUTO_RECOVER=true, and a real Sidekiq 6.4.1 with the
   gem (``bench/sidekiq/recovery_app.rb``, as many threads as jobs) running N sleeping jobs, whose
   ``started`` reports are in the ledger. The bench SIGKILLs Sidekiq right after a heartbeat (the
   worst moment: the push is due a whole stale window, plus up to one interval, later; "beat age" is
   how long before the kill that beat was), starts another Sidekiq process at once (as systemd or
   Kubernetes would), and times, per job, the kill to its push (the ``restarted`` event in the
   ledger) and the kill to its second run beginning (the job's own side effect: each run appends
   its start time to a Redis list). It then waits one more interval and counts the runs beyond
   each job's second (must be 0).

B. 10,000 jobs lost at once (``--lost``), without 10,000 real jobs. A fleet of fake Sidekiq 6.4.1
   processes (``--lost-processes``) heartbeats in Redis as Sidekiq does (identity hash with info and
   beat, ``<identity>:workers`` hash with each running job, TTL 60 s, every 5 s); the jobs' queued
   and started reports, as the gem sends them (payload keys kept: retry, backtrace, tags,
   ActiveJob's wrapper; arguments from ``bench/load_ledger.py``), go through the writer
   (``store.writer.write_reports``) in batches. ``serve``'s loop (``Recoverer.run``, in this
   process so each pass can be timed) runs meanwhile; then the fleet beats one last time and stops,
   leaving its hashes to expire as a SIGKILL does. The bench times the last beat to the first and to
   the last of the jobs in Sidekiq's queues, each pass's duration and pushes/s, and checks every job
   was pushed exactly once, with its kept keys and arguments.

C. A pass's cost with ``--ledger-jobs`` (default 1,000,000) in the ledger, loaded by
   ``bench/load_ledger.py`` (mostly complete; about 4.5% uncompleted). Its uncompleted jobs are
   given to eight live processes (their identities rewritten, heartbeats fresh before each pass),
   so a pass finds nothing to do; each pass is timed (cold, then the median of ``--passes``) with
   its parts: reading Sidekiq's Redis (the snapshot) and walking the uncompleted jobs. Then passes
   that each find ``--few-lost`` fresh lost jobs; then the same ledger with all but ``--cut``
   uncompleted jobs marked complete, to show a pass's cost follows the uncompleted jobs, not the
   ledger's size.

``--quick`` (a smoke check, about a minute): the short profile, 1 and 10 real jobs, 1,000 lost
at once, a ledger of 20,000 jobs. Without ``--database-url`` each run gets a fresh SQLite file in
a temporary folder; with it (PostgreSQL), the bench empties that database's ledger tables before
each run. It flushes its Redis database before each run: without ``--redis-url`` it claims an
empty index of the local Redis, from 13 down, as the test suites claim theirs (from 15 down: a lock
key in database 0 for the bench's duration, and a key of its own in the index), so that neither
flushes the other's. A needs Debian's ruby and ruby-sidekiq (6.4.1).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import redis
from sqlalchemy import Engine, bindparam, select, update

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.job_payloads import PayloadSeal, job_content
from sidekiq_supervisor.services.ledger import JobFilter
from sidekiq_supervisor.services.recovery import Recoverer
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.sidekiq_redis import connection as sidekiq_connection
from sidekiq_supervisor.store.engine import make_engine, write_transaction
from sidekiq_supervisor.store.migrate import upgrade
from sidekiq_supervisor.store.schema import job_events, jobs
from sidekiq_supervisor.store.writer import write_reports

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from ingest_seed import free_port, wait_healthy  # noqa: E402
from load_ledger import CLASSES, arguments, load_postgresql, load_sqlite  # noqa: E402
from tests.e2e.fault_sidekiq import HarnessError, wait_for  # noqa: E402

APP = HERE / "sidekiq" / "recovery_app.rb"
LEDGER_TABLES = ("jobs", "job_events", "job_payloads", "duration_rollups", "event_counts")
QUEUES = sorted({queue for _, queue, _ in CLASSES})
ACTIVE_JOB_WRAPPER = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
BEAT_SECONDS = 5.0  # Sidekiq 6's heartbeat
HASH_TTL_SECONDS = 60  # Sidekiq's expiry of a process's heartbeat and work hashes
OWNER_KEY = "bench:recovery:owner"  # keeps the Redis database non-empty (claimed) during a run
REDIS_SERVER = "redis://127.0.0.1:6379"
# The test suites' claim on a database index (tests/conftest.py), which the bench takes too.
LOCK_KEY = "sidekiq-supervisor:tests:db:{index}"
REPORT_CHUNK = 1000


@dataclass(frozen=True)
class Profile:
    """A pair of recovery settings, and the bound they promise."""

    name: str
    stale: float
    interval: float

    @property
    def bound(self) -> float:
        """Seconds from a process's last heartbeat to its jobs pushed again, at most."""
        return self.stale + self.interval

    def describe(self) -> str:
        return (
            f"{self.name}: SUPERVISOR_PROCESS_STALE_SECONDS={self.stale:g} "
            f"SUPERVISOR_RECOVER_INTERVAL_SECONDS={self.interval:g} "
            f"(bound stale + interval = {self.bound:g} s)"
        )

    def settings(self, database_url: str, redis_url: str) -> Settings:
        return Settings(
            database_url=database_url,
            redis_url=redis_url,
            auto_recover=True,
            process_stale_seconds=self.stale,
            recover_interval_seconds=self.interval,
            sidekiq_version=6,
        )


class BenchError(RuntimeError):
    """A run did not go as it must (a timeout, a job pushed twice): the figures would lie."""


def spread(values: list[float]) -> str:
    """min / median / max, in seconds."""
    if not values:
        return "-"
    return f"{min(values):6.1f} {statistics.median(values):6.1f} {max(values):6.1f}"


# --- ledgers and Redis -------------------------------------------------------------------------------


def fresh_ledger(args: argparse.Namespace, workdir: Path, name: str) -> str:
    """The URL of an empty ledger at head: a new SQLite file, or the emptied PostgreSQL database."""
    if args.database_url:
        url = args.database_url
        engine = make_engine(url)
        upgrade(engine)
        with engine.begin() as connection:
            connection.exec_driver_sql(f"TRUNCATE {', '.join(LEDGER_TABLES)}")
        engine.dispose()
        return url
    path = workdir / f"{name}.db"
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    url = f"sqlite:///{path}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def drop_sqlite(url: str) -> None:
    """Remove a SQLite ledger's files (a million jobs take a gigabyte)."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        for leftover in (path, f"{path}-wal", f"{path}-shm"):
            Path(leftover).unlink(missing_ok=True)


@contextmanager
def claimed_redis() -> Iterator[str]:
    """The URL of an empty database index of the local Redis, locked for the bench as the test suites
    lock theirs (tests/conftest.py), from 13 down (the suites start at 15)."""
    locks = redis.Redis.from_url(f"{REDIS_SERVER}/0")
    for index in range(13, 0, -1):
        lock = LOCK_KEY.format(index=index)
        client = redis.Redis.from_url(f"{REDIS_SERVER}/{index}")
        if client.dbsize() == 0 and locks.set(lock, os.getpid(), nx=True, ex=6 * 3600):
            try:
                client.set(OWNER_KEY, os.getpid())
                yield f"{REDIS_SERVER}/{index}"
            finally:
                client.flushdb()
                locks.delete(lock)
            return
    raise SystemExit("no empty, unclaimed Redis database index: pass --redis-url")


def fresh_redis(client: redis.Redis) -> None:
    """Empty the bench's Redis database, and keep it claimed (non-empty) for the run."""
    client.flushdb()
    client.set(OWNER_KEY, os.getpid())


def count_started(engine: Engine) -> int:
    with engine.connect() as connection:
        query = select(jobs.c.id).where(jobs.c.status == JobStatus.STARTED.value)
        return len(connection.execute(query).all())


def restarts(engine: Engine) -> dict[str, tuple[float, str]]:
    """Each restarted original jid: when it was pushed again (epoch seconds) and its new jid."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(job_events.c.jid, job_events.c.at, job_events.c.detail).where(
                job_events.c.kind == EventKind.RESTARTED.value
            )
        ).all()
    return {row.jid: (row.at / 1_000_000, orjson.loads(row.detail)["new_jid"]) for row in rows}


# --- A: real Sidekiq processes ---------------------------------------------------------------------


@contextmanager
def serve(url: str, redis_url: str, profile: Profile, log: Path) -> Iterator[str]:
    """``sidekiq-supervisor serve`` with automatic recovery on; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "SUPERVISOR_AUTO_RECOVER": "true",
        "SUPERVISOR_PROCESS_STALE_SECONDS": f"{profile.stale:g}",
        "SUPERVISOR_RECOVER_INTERVAL_SECONDS": f"{profile.interval:g}",
        "SUPERVISOR_SIDEKIQ_VERSION": "6",
    }
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
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base)
        yield base
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after 15 s; nothing if it already ended."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@dataclass
class SidekiqProcess:
    """A running ``sidekiq`` of the bench's app, and the identity it heartbeats under."""

    process: subprocess.Popen[bytes]
    identity: str

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)


@contextmanager
def sidekiq(env: dict[str, str], client: redis.Redis, threads: int, log: Path) -> Iterator[SidekiqProcess]:
    """A Sidekiq 6.4.1 server on the default queue, once its first heartbeat is in Redis."""
    before = client.smembers("processes")
    command = ["sidekiq", "-r", str(APP), "-c", str(threads), "-q", "default", "-t", "1"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        (identity, *_) = wait_for("Sidekiq beats", lambda: client.smembers("processes") - before, timeout=60)
        yield SidekiqProcess(process, identity.decode())
    finally:
        stop(process)


def runs(client: redis.Redis, names: list[str]) -> list[list[float]]:
    """The start times of each job's runs, from its side effect."""
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.lrange(f"bench:runs:{name}", 0, -1)
    return [[float(start) for start in each] for each in pipe.execute()]


@dataclass
class RealRun:
    """Scenario A's figures for one profile and one number of jobs."""

    profile: Profile
    jobs: int
    beat_age: float  # seconds from the killed process's last heartbeat to the kill
    pushed: list[float]  # per job, seconds from the kill to its push
    running: list[float]  # per job, seconds from the kill to its second run starting
    extra_runs: int  # runs beyond the second, all jobs together (must be 0)


def real_jobs(
    args: argparse.Namespace, profile: Profile, count: int, workdir: Path, client: redis.Redis
) -> RealRun:
    """Scenario A: ``count`` real jobs lost to a SIGKILL, run again by another process."""
    fresh_redis(client)
    url = fresh_ledger(args, workdir, f"a-{profile.name}-{count}")
    engine = make_engine(url)
    tag = f"{profile.name}-{count}"
    names = [f"job-{number}" for number in range(count)]
    threads = max(count, 5)
    try:
        with serve(url, args.redis_url, profile, workdir / f"serve-{tag}.log") as base:
            env = {
                **os.environ,
                "REDIS_URL": args.redis_url,
                "SIDEKIQ_SUPERVISOR_HOST": base,
                "http_proxy": "",
                "HTTP_PROXY": "",
            }
            client.set("bench:sleep", 1)
            with sidekiq(env, client, threads, workdir / f"sidekiq-{tag}-victim.log") as victim:
                pushed = subprocess.run(
                    ["ruby", str(APP), str(count)], env=env, capture_output=True, text=True, check=True
                )
                if len(orjson.loads(pushed.stdout.strip().splitlines()[-1])) != count:
                    raise BenchError(f"pushed fewer than {count} jobs: {pushed.stdout}")
                wait_for("every job runs", lambda: all(runs(client, names)), timeout=60)
                wait_for("the ledger has every started report", lambda: count_started(engine) == count, 60)
                # Killed right after a heartbeat, the worst moment: the push is due a whole stale
                # window (plus up to one interval) later.
                before = client.hget(victim.identity, "beat")
                wait_for(
                    "a heartbeat",
                    lambda: client.hget(victim.identity, "beat") != before,
                    timeout=3 * BEAT_SECONDS,
                    poll=0.005,
                )
                beat = float(client.hget(victim.identity, "beat") or 0)
                killed_at = time.time()
                victim.kill()
            client.delete("bench:sleep")  # the jobs' next runs end at once
            with sidekiq(env, client, threads, workdir / f"sidekiq-{tag}-survivor.log"):
                wait_for(
                    "every lost job runs again",
                    lambda: all(len(each) >= 2 for each in runs(client, names)),
                    timeout=profile.bound + 120,
                    poll=0.1,
                )
                wait_for("the second runs end", lambda: int(client.get("bench:done") or 0) >= count, 60)
                time.sleep(profile.interval + 1)  # at least one more pass, which must push nothing
                started = runs(client, names)
        pushes = restarts(engine)
    finally:
        engine.dispose()
        drop_sqlite(url)
    if len(pushes) != count:
        raise BenchError(f"{len(pushes)} restarted events for {count} lost jobs")
    return RealRun(
        profile,
        count,
        killed_at - beat,
        [at - killed_at for at, _ in pushes.values()],
        [each[1] - killed_at for each in started],
        sum(len(each) - 2 for each in started),
    )


def print_real(results: list[RealRun]) -> None:
    print()
    print("A. real jobs lost to a SIGKILL (Sidekiq 6.4.1 + gem, `serve` with automatic recovery)")
    print("   seconds from the kill; min median max")
    print(f"   {'profile':8} {'jobs':>5} {'beat age':>8}  {'kill → pushed':>20}  {'kill → running again':>20}"
          f"  {'bound':>6}  {'extra runs':>10}")  # fmt: skip
    for run in results:
        print(
            f"   {run.profile.name:8} {run.jobs:5d} {run.beat_age:8.1f}  {spread(run.pushed):>20}  "
            f"{spread(run.running):>20}  {run.profile.bound:6g}  {run.extra_runs:10d}"
        )


# --- B and C: lost jobs through the writer, fake processes in Redis --------------------------------


@dataclass
class LostJob:
    """One job as the gem reported it, and as Sidekiq holds it while it runs."""

    jid: str
    job_class: str  # as reported (ActiveJob's job class, not the wrapper)
    queue: str
    arguments: list[Any]
    payload: dict[str, Any] | None  # the gem's payload member: the job hash less args and per-run keys

    def pushed_text(self, at: float) -> str:
        """The job as Sidekiq pushed it (pushed at ``at``), as its work hash holds it: JSON text."""
        head = self.payload or {"class": self.job_class}
        return orjson.dumps({**head, "args": self.arguments, "queue": self.queue, "jid": self.jid,
                             "created_at": at, "enqueued_at": at}).decode()  # fmt: skip


def gem_job(rng: random.Random, number: int) -> LostJob:
    """A job of ``bench/load_ledger.py``'s classes and arguments, with the options a gem would report."""
    job_class, queue, _ = CLASSES[rng.randrange(len(CLASSES))]
    args = arguments(rng, job_class, queue, number)
    payload: dict[str, Any] | None
    if isinstance(args[0], dict) and "job_class" in args[0]:  # ActiveJob: the wrapper is what runs
        payload = {"class": ACTIVE_JOB_WRAPPER, "wrapped": job_class, "retry": True}
    else:
        options: dict[str, Any] = {"retry": rng.choice([True, True, 3, 25, False])}
        if rng.random() < 0.3:
            options["backtrace"] = 10
        if rng.random() < 0.2:
            options["tags"] = ["bench", queue]
        plain = options == {"retry": True}  # the gem sends no payload for Sidekiq's defaults
        payload = None if plain else {"class": job_class, **options}
    return LostJob(f"{rng.getrandbits(96):024x}", job_class, queue, args, payload)


@dataclass
class FakeProcess:
    """A Sidekiq 6.4.1 process as Redis shows it: its identity, info, and the jobs its threads run."""

    identity: str
    pid: int
    running: dict[str, LostJob] = field(default_factory=dict)  # thread id → job
    started_at: float = field(default_factory=time.time)

    @property
    def hostname(self) -> str:
        return self.identity.split(":")[0]

    def worker(self, thread: str) -> str:
        """The ``worker`` member of the gem's started report."""
        return orjson.dumps({"identity": self.identity, "hostname": self.hostname, "pid": self.pid,
                             "thread": thread}).decode()  # fmt: skip

    def info(self) -> bytes:
        return orjson.dumps({
            "hostname": self.hostname, "started_at": self.started_at, "pid": self.pid, "tag": "bench",
            "concurrency": max(len(self.running), 1), "queues": QUEUES, "labels": [],
            "identity": self.identity,
        })  # fmt: skip


def fleet(host: str, processes: int) -> list[FakeProcess]:
    return [FakeProcess(f"{host}:{4000 + n}:{secrets.token_hex(6)}", 4000 + n) for n in range(processes)]


def beat(client: redis.Redis, processes: list[FakeProcess], now: float) -> None:
    """One heartbeat of each process, as Sidekiq 6.4.1 writes it."""
    pipe = client.pipeline(transaction=False)
    for process in processes:
        work = f"{process.identity}:workers"
        pipe.unlink(work)
        if process.running:
            entries = {
                thread: orjson.dumps(
                    {"queue": job.queue, "payload": job.pushed_text(now - 30), "run_at": int(now - 20)}
                )
                for thread, job in process.running.items()
            }
            pipe.hset(work, mapping=entries)  # type: ignore[arg-type]
            pipe.expire(work, HASH_TTL_SECONDS)
        pipe.sadd("processes", process.identity)
        pipe.hset(process.identity, mapping={
            "info": process.info(), "busy": len(process.running), "beat": f"{now:.6f}", "quiet": "false",
            "rss": 250_000, "rtt_us": 150,
        })  # fmt: skip
        pipe.expire(process.identity, HASH_TTL_SECONDS)
    pipe.execute()


class Heartbeats:
    """Processes beating every 5 s in a thread of their own until :meth:`die`."""

    def __init__(self, client: redis.Redis, processes: list[FakeProcess]) -> None:
        self._client = client
        self._processes = processes
        self._stopping = threading.Event()
        beat(client, processes, time.time())
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.wait(BEAT_SECONDS):
            beat(self._client, self._processes, time.time())

    def die(self) -> float:
        """One last heartbeat, then none (the hashes expire as a SIGKILL leaves them); its time."""
        self._stopping.set()
        self._thread.join()
        last = time.time()
        beat(self._client, self._processes, last)
        return last


def report_lost(
    engine: Engine, settings: Settings, placed: list[tuple[FakeProcess, str, LostJob]], now: float
) -> float:
    """The gem's queued and started reports of each job, through the writer; the seconds it took."""
    seal = PayloadSeal(settings.secret_keys)
    reports = []
    for number, (process, thread, job) in enumerate(placed):
        content = job_content(
            job.job_class, orjson.dumps(job.arguments).decode(), job.payload, settings.redaction_words, seal
        )
        fields = (content.job_class, job.queue, content.arguments)
        extra = {"payload_form": content.payload_form, "payload": content.payload}
        queued, started = int((now - 30) * 1e6) + number, int((now - 20) * 1e6) + number
        reports.append(Report(job.jid, EventKind.QUEUED, queued, *fields, **extra))
        reports.append(
            Report(job.jid, EventKind.STARTED, started, *fields, worker=process.worker(thread), **extra)
        )
    began = time.perf_counter()
    for first in range(0, len(reports), REPORT_CHUNK):
        with write_transaction(engine) as connection:
            write_reports(connection, reports[first : first + REPORT_CHUNK], now_micros())
    return time.perf_counter() - began


def place(
    rng: random.Random, processes: list[FakeProcess], count: int, first: int = 0
) -> list[tuple[FakeProcess, str, LostJob]]:
    """``count`` jobs spread over ``processes``' threads (their work hashes show them)."""
    placed = []
    for number in range(first, first + count):
        process = processes[number % len(processes)]
        thread = f"t{number:x}"
        job = gem_job(rng, number)
        process.running[thread] = job
        placed.append((process, thread, job))
    return placed


def queued(client: redis.Redis) -> int:
    """Jobs waiting in Sidekiq's queues."""
    pipe = client.pipeline(transaction=False)
    for queue in QUEUES:
        pipe.llen(f"queue:{queue}")
    return sum(pipe.execute())


@dataclass(frozen=True)
class Pass:
    """One recovery pass: when it began (epoch seconds), how long it took, how many it pushed."""

    began: float
    seconds: float
    pushed: int


class TimedLoop:
    """``Recoverer.run`` (serve's loop) in a thread of its own, each pass timed."""

    def __init__(self, recoverer: Recoverer, interval: float) -> None:
        self.passes: list[Pass] = []
        self._recoverer = recoverer
        one_pass = recoverer.recover

        def timed() -> Any:
            began, clock = time.time(), time.perf_counter()
            done = one_pass()
            self.passes.append(Pass(began, time.perf_counter() - clock, sum(o.taken for o in done)))
            return done

        recoverer.recover = timed  # type: ignore[method-assign]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete, args=(recoverer.run(interval),), daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """End the loop after the pass under way."""
        self._loop.call_soon_threadsafe(self._recoverer.stop)
        self._thread.join()
        self._loop.close()


@dataclass
class BulkRun:
    """Scenario B's figures for one profile."""

    profile: Profile
    lost: int
    processes: int
    load_seconds: float
    first: float  # seconds from the last heartbeat to the first job in a queue
    last: float  # ... to the last
    passes_alive: list[Pass]  # passes while the processes beat (nothing to push)
    passes_after: list[Pass]  # passes after the last heartbeat
    faithful: int  # pushed jobs whose class, options and arguments are the original's


def bulk(args: argparse.Namespace, profile: Profile, workdir: Path, client: redis.Redis) -> BulkRun:
    """Scenario B: ``args.lost`` jobs of fake processes lost at once, pushed again by serve's loop."""
    fresh_redis(client)
    url = fresh_ledger(args, workdir, f"b-{profile.name}")
    settings = profile.settings(url, args.redis_url)
    engine = make_engine(url)
    rng = random.Random(14)
    processes = fleet("bench-node", args.lost_processes)
    placed = place(rng, processes, args.lost)
    heartbeats = Heartbeats(client, processes)
    loop = None
    try:
        load_seconds = report_lost(engine, settings, placed, time.time())
        manager = JobManager.on(engine, sidekiq_connection.connect(args.redis_url), settings)
        loop = TimedLoop(Recoverer.from_settings(manager, engine, settings), profile.interval)
        wait_for("a pass while the processes live", lambda: loop.passes, timeout=120)
        last_beat = heartbeats.die()
        first = last = None
        deadline = time.monotonic() + profile.bound + 600
        while time.monotonic() < deadline:
            waiting = queued(client)
            if waiting and first is None:
                first = time.time()
            if waiting >= args.lost:
                last = time.time()
                break
            time.sleep(0.02)
        else:
            raise BenchError(
                f"{queued(client)} of {args.lost} lost jobs pushed within {profile.bound + 600:g} s"
            )
        time.sleep(profile.interval + 1)  # at least one more pass, which must push nothing
        loop.stop()
        alive = [p for p in loop.passes if p.began < last_beat]
        after = [p for p in loop.passes if p.began >= last_beat]
        faithful = check_pushed(engine, client, placed)
    finally:
        if loop is not None and loop._thread.is_alive():
            loop.stop()
        engine.dispose()
        drop_sqlite(url)
    assert first is not None and last is not None
    return BulkRun(
        profile,
        args.lost,
        len(processes),
        load_seconds,
        first - last_beat,
        last - last_beat,
        alive,
        after,
        faithful,
    )


def check_pushed(engine: Engine, client: redis.Redis, placed: list[tuple[FakeProcess, str, LostJob]]) -> int:
    """Check each lost job was pushed once; how many were pushed with exactly their class, options and
    arguments (the rest raise: a bench that pushes wrong jobs measures nothing)."""
    pushes = restarts(engine)
    in_queues: dict[str, dict[str, Any]] = {}
    for queue in QUEUES:
        for raw in client.lrange(f"queue:{queue}", 0, -1):
            job = orjson.loads(raw)
            if job["jid"] in in_queues:
                raise BenchError(f"job {job['jid']} is twice in the queues")
            in_queues[job["jid"]] = job
    if len(pushes) != len(placed) or len(in_queues) != len(placed) or count_started(engine):
        raise BenchError(
            f"{len(placed)} lost jobs: {len(pushes)} restarted events, {len(in_queues)} jobs in the queues, "
            f"{count_started(engine)} still uncompleted"
        )
    faithful = 0
    for _, _, job in placed:
        pushed = in_queues[pushes[job.jid][1]]
        expected = {**(job.payload or {"class": job.job_class}), "args": job.arguments, "queue": job.queue}
        if any(pushed.get(key, True if key == "retry" else None) != value for key, value in expected.items()):
            raise BenchError(f"job {job.jid} was pushed as {pushed}, not as {expected}")
        faithful += 1
    return faithful


def print_bulk(results: list[BulkRun]) -> None:
    print()
    print("B. jobs lost at once (fake Sidekiq 6.4.1 processes; reports through the writer; serve's loop)")
    for run in results:
        recovering = [p for p in run.passes_after if p.pushed]
        pushed = sum(p.pushed for p in recovering)
        seconds = sum(p.seconds for p in recovering)
        idle = [p.seconds * 1000 for p in run.passes_alive]
        print(f"   {run.profile.describe()}")
        print(f"   {run.lost:,} started jobs on {run.processes} processes, reported through the writer in "
              f"{run.load_seconds:.1f} s")  # fmt: skip
        median = statistics.median(idle)
        print(f"   passes while they beat (nothing to push): {len(idle)}, median {median:,.0f} ms")
        print(f"   last heartbeat → first job in a queue: {run.first:6.1f} s")
        print(f"   last heartbeat → all {run.lost:,} in queues: {run.last:6.1f} s "
              f"(bound {run.profile.bound:g} s + the pass)")  # fmt: skip
        for each in recovering:
            print(f"   a pushing pass: {each.pushed:,} pushed in {each.seconds:.2f} s = "
                  f"{each.pushed / each.seconds:,.0f} pushes/s")  # fmt: skip
        if recovering:
            print(f"   all pushing passes: {pushed:,} in {seconds:.2f} s = {pushed / seconds:,.0f} pushes/s")
        later = [p for p in run.passes_after if not p.pushed]
        print(
            f"   passes after the last beat that pushed nothing (in the stale window, or after): {len(later)}"
        )
        print(f"   jobs pushed exactly once, with their class, options and arguments: "
              f"{run.faithful:,}/{run.lost:,}")  # fmt: skip


# --- C: a pass's cost over a large ledger ----------------------------------------------------------


@dataclass
class PassCost:
    """The timings of one kind of pass, in ms."""

    label: str
    uncompleted: int
    cold: float
    median: float
    snapshot: float
    walk: float
    pushed: int


def give_to_live_processes(engine: Engine) -> list[FakeProcess]:
    """Rewrite the uncompleted jobs' worker to one live process per host (the loader's hosts)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(jobs.c.id, jobs.c.worker).where(jobs.c.status == JobStatus.STARTED.value)
        ).all()
    hosts = sorted({orjson.loads(row.worker)["hostname"] for row in rows if row.worker})
    live = {host: FakeProcess(f"{host}:100:{secrets.token_hex(6)}", 100) for host in hosts}
    changes = [
        {"row_id": row.id, "new_worker": live[orjson.loads(row.worker)["hostname"]].worker("t1")}
        for row in rows
        if row.worker
    ]
    statement = update(jobs).where(jobs.c.id == bindparam("row_id")).values(worker=bindparam("new_worker"))
    with engine.begin() as connection:
        for first in range(0, len(changes), 10_000):
            connection.execute(statement, changes[first : first + 10_000])
    return list(live.values())


def cut_uncompleted(engine: Engine, keep: int) -> int:
    """Mark all but the newest ``keep`` uncompleted jobs complete; how many are left."""
    with engine.begin() as connection:
        ids = (
            connection.execute(
                select(jobs.c.id).where(jobs.c.status == JobStatus.STARTED.value).order_by(jobs.c.id.desc())
            )
            .scalars()
            .all()
        )
        if len(ids) > keep:
            boundary = ids[keep - 1] if keep else ids[0] + 1
            connection.execute(
                update(jobs)
                .where(jobs.c.status == JobStatus.STARTED.value, jobs.c.id < boundary)
                .values(status=JobStatus.COMPLETE.value, completed_at=jobs.c.started_at + 1_000_000)
            )
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("VACUUM ANALYZE jobs")
    return count_started(engine)


def time_passes(
    label: str,
    engine: Engine,
    manager: JobManager,
    recoverer: Recoverer,
    client: redis.Redis,
    live: list[FakeProcess],
    passes: int,
    before_each: Callable[[], int] = lambda: 0,
) -> PassCost:
    """Cold and median ms of ``passes`` + 1 passes (``before_each`` adds the lost jobs each must push)."""
    times, snapshots, walks = [], [], []
    pushed = 0
    uncompleted = count_started(engine)
    for _ in range(passes + 1):
        expected = before_each()
        uncompleted = count_started(engine)
        beat(client, live, time.time())
        began = time.perf_counter()
        done = recoverer.recover()
        times.append((time.perf_counter() - began) * 1000)
        taken = sum(outcome.taken for outcome in done)
        if taken != expected:
            raise BenchError(f"{label}: a pass pushed {taken} jobs, not {expected}")
        pushed = taken
        began = time.perf_counter()
        manager.liveness.snapshot()
        snapshots.append((time.perf_counter() - began) * 1000)
        began = time.perf_counter()
        sum(1 for _ in manager.ledger.iterate(JobFilter(status=JobStatus.STARTED)))
        walks.append((time.perf_counter() - began) * 1000)
    return PassCost(
        label,
        uncompleted,
        times[0],
        statistics.median(times[1:]),
        statistics.median(snapshots[1:]),
        statistics.median(walks[1:]),
        pushed,
    )


@dataclass
class LedgerRun:
    """Scenario C's figures."""

    backend: str
    jobs: int
    load_seconds: float
    costs: list[PassCost]


def large_ledger(args: argparse.Namespace, profile: Profile, workdir: Path, client: redis.Redis) -> LedgerRun:
    """Scenario C: passes over a ledger of ``args.ledger_jobs`` jobs."""
    fresh_redis(client)
    url = fresh_ledger(args, workdir, "c")
    settings = profile.settings(url, args.redis_url)
    loader = make_engine(url, sqlite_synchronous="OFF")
    began = time.perf_counter()
    print(f"\nC. loading {args.ledger_jobs:,} jobs with bench/load_ledger.py ...", flush=True)
    if loader.dialect.name == "postgresql":
        load_postgresql(loader, args.ledger_jobs, seed=7)
    else:
        load_sqlite(loader, args.ledger_jobs, seed=7)
        with loader.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    load_seconds = time.perf_counter() - began
    loader.dispose()
    engine = make_engine(url, sqlite_synchronous=settings.sqlite_synchronous)
    try:
        live = give_to_live_processes(engine)
        manager = JobManager.on(engine, sidekiq_connection.connect(args.redis_url), settings)
        recoverer = Recoverer.from_settings(manager, engine, settings)
        gone = fleet("gone-node", 1)
        rng = random.Random(15)
        added = [0]

        def lose_a_few() -> int:
            placed = place(rng, gone, args.few_lost, first=added[0])
            added[0] += args.few_lost
            report_lost(engine, settings, placed, time.time())
            return args.few_lost

        costs = [
            time_passes("nothing to do", engine, manager, recoverer, client, live, args.passes),
            time_passes(
                f"{args.few_lost} lost", engine, manager, recoverer, client, live, args.passes, lose_a_few
            ),
        ]
        left = cut_uncompleted(engine, args.cut)
        label = f"nothing to do, {left:,} uncompleted"
        costs.append(time_passes(label, engine, manager, recoverer, client, live, args.passes))
    finally:
        engine.dispose()
        drop_sqlite(url)
    return LedgerRun(engine.dialect.name, args.ledger_jobs, load_seconds, costs)


def print_ledger(run: LedgerRun) -> None:
    print(
        f"C. one pass over a ledger of {run.jobs:,} jobs ({run.backend}; loaded in {run.load_seconds:.0f} s)"
    )
    print("   ms per pass: cold (first), then the median of the next; snapshot = reading Sidekiq's Redis,")
    print("   walk = reading the uncompleted jobs alone (both inside the pass); pushed = by each pass")
    print(f"   {'pass':36} {'uncompleted':>11} {'cold ms':>8} {'median ms':>9} {'snapshot':>8} "
          f"{'walk':>8} {'pushed':>6}")  # fmt: skip
    for cost in run.costs:
        print(
            f"   {cost.label:36} {cost.uncompleted:11,} {cost.cold:8.0f} {cost.median:9.0f} "
            f"{cost.snapshot:8.1f} {cost.walk:8.0f} {cost.pushed:6,}"
        )


# --- the command -----------------------------------------------------------------------------------

FULL = {
    "profiles": "default,short",
    "real_jobs": "1,100",
    "lost": 10_000,
    "ledger_jobs": 1_000_000,
    "passes": 5,
}
QUICK = {"profiles": "short", "real_jobs": "1,10", "lost": 1_000, "ledger_jobs": 20_000, "passes": 3}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and the short profile: a smoke check"
    )
    parser.add_argument("--scenarios", default="a,b,c")
    parser.add_argument("--profiles", help="default, short, or both (default: both; --quick: short)")
    parser.add_argument("--stale", type=float, default=60.0, help="the default profile's stale seconds")
    parser.add_argument("--interval", type=float, default=15.0, help="the default profile's interval seconds")
    parser.add_argument("--real-jobs", help="A: comma-separated numbers of real jobs (default 1,100)")
    parser.add_argument("--lost", type=int, help="B: jobs lost at once (default 10,000)")
    parser.add_argument("--lost-processes", type=int, default=10, help="B: the processes they ran on")
    parser.add_argument("--ledger-jobs", type=int, help="C: jobs in the ledger (default 1,000,000)")
    parser.add_argument("--few-lost", type=int, default=10, help="C: lost jobs found by each pass")
    parser.add_argument("--passes", type=int, help="C: passes timed after the first (default 5)")
    parser.add_argument("--cut", type=int, default=1000, help="C: uncompleted jobs left for the last passes")
    parser.add_argument("--database-url", help="PostgreSQL to use (its ledger tables are emptied)")
    parser.add_argument("--redis-url", help="flushed before each run (default: a free index, claimed)")
    args = parser.parse_args()
    # One warning line per recovered job (serve's log) would bury the figures; errors still show.
    logging.getLogger("sidekiq_supervisor").setLevel(logging.ERROR)
    for name, value in (QUICK if args.quick else FULL).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    profiles = {
        "default": Profile("default", args.stale, args.interval),
        "short": Profile("short", 8.0, 1.0),
    }
    chosen = [profiles[name] for name in args.profiles.split(",")]
    if args.redis_url:
        run(args, chosen)
        return
    with claimed_redis() as url:
        args.redis_url = url
        run(args, chosen)


def run(args: argparse.Namespace, chosen: list[Profile]) -> None:
    """The scenarios asked for, each under each profile; prints as it goes."""
    scenarios = set(args.scenarios.split(","))
    client = redis.Redis.from_url(args.redis_url)
    print(f"ledger: {args.database_url or 'a fresh SQLite file per run'}; Sidekiq's Redis: {args.redis_url}")
    for profile in chosen:
        print(f"profile {profile.describe()}")
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-recovery-") as folder:
        workdir = Path(folder)
        try:
            if "a" in scenarios:
                results = []
                for profile in chosen:
                    for count in (int(n) for n in args.real_jobs.split(",")):
                        print(f"A. {profile.name}, {count} real jobs ...", flush=True)
                        results.append(real_jobs(args, profile, count, workdir, client))
                print_real(results)
            if "b" in scenarios:
                bulks = []
                for profile in chosen:
                    print(f"\nB. {profile.name}, {args.lost:,} lost at once ...", flush=True)
                    bulks.append(bulk(args, profile, workdir, client))
                print_bulk(bulks)
            if "c" in scenarios:
                print_ledger(large_ledger(args, chosen[0], workdir, client))
        except (BenchError, HarnessError) as exc:  # a check failed, or something never happened
            for log in sorted(workdir.glob("*.log")):
                print(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
            raise SystemExit(f"bench failed: {exc}") from None
        finally:
            client.flushdb()
    print(f"\n{time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
