"""The real Sidekiq::Web of a Sidekiq line beside our monitor, over one Redis of Sidekiq's own data.

A real Sidekiq process of the line (``tests/e2e/sidekiq_app/compat_jobs.rb``) writes everything:
jobs that succeed (per-class metrics on 7 and 8), fail with retries left (a long error message
and a backtrace), die, wait scheduled an hour ahead, wait in queues it does not listen to, and one
that is still running when the process is killed (SIGKILL: its heartbeat and work entry stay, made
permanent, so the Busy page shows it). The database is then snapshotted (``DUMP`` of every key);
every test restores that snapshot first, so the sites of all three lines can share the tests' one
Redis database and each action starts from the same data on both sides.

Then ``web.rb`` of the shared Sidekiq versions folder serves that line's Sidekiq::Web on a free
port, and our monitor app runs in a ``TestClient`` on the same database.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis
from fastapi.testclient import TestClient

from sidekiq_supervisor.settings import Settings
from tests.conftest import redis_test_url
from tests.e2e.real_sidekiq import APP, line_environment, sidekiq, wait_until
from tests.live_service import free_port, stop
from tests.web.monitor.conftest import monitor_client

PREFIX = "/sidekiq"
APP_FILE = APP / "compat_jobs.rb"
# The queues the jobs wait in; the Sidekiq process listens to "default" only.
WAITING = {"alpha": 3, "beta": 2, "gamma": 1}
# Keys Sidekiq::Web writes by itself while serving pages (8's process-cleanup lock): no state.
INCIDENTAL_KEYS = {"process_cleanup"}
# Fields rewritten with the time of the action (a job pushed to a queue gets a new enqueued_at).
CLOCK_FIELDS = {"enqueued_at"}

# What the process is asked to run; the second phase pushes to "default" once it is gone, so that
# queue has a latency.
MAKE_JOBS = """
require ARGV.fetch(0)
require "json"
made = {}
if ARGV.fetch(1) == "run"
  Sidekiq.redis { |c| c.set("compat:busy", "1") }
  made["ok"] = 3.times.map { |i| CompatOkJob.perform_async(i) }
  made["fail"] = 6.times.map { |i| CompatFailJob.perform_async(i) }
  made["dead"] = 3.times.map { |i| CompatDeadJob.perform_async(i) }
  made["scheduled"] = 4.times.map { |i| CompatOkJob.perform_in(3600 * (i + 1), 100 + i) }
  made["busy"] = [CompatBusyJob.perform_async("busy")]
  JSON.parse(ARGV.fetch(2)).each do |queue, count|
    made[queue] = count.times.map do |i|
      Sidekiq::Client.push("class" => "CompatOkJob", "queue" => queue, "args" => [i])
    end
  end
else
  made["default"] = 2.times.map { |i| CompatOkJob.perform_async(300 + i) }
end
puts JSON.generate(made)
"""


def versions_folder() -> Path:
    """The shared Sidekiq versions folder (as ``tests.e2e.real_sidekiq`` finds it)."""
    configured = os.environ.get("SIDEKIQ_VERSIONS_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3].parent / "shared" / "sidekiq-versions"


def web_rb() -> Path:
    """``web.rb`` of the versions folder; skips (fails in CI) where the folder is absent."""
    path = versions_folder() / "web.rb"
    if not path.exists():
        reason = f"the real Sidekiq::Web needs {path} (or SIDEKIQ_VERSIONS_DIR); the README's Set up says how"
        if os.environ.get("SUPERVISOR_CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


# ---------------------------------------------------------------------------------------------
# Redis: snapshot, restore, and the state an action leaves


def snapshot(client: redis.Redis) -> dict[bytes, bytes]:
    """Every key of the database, ``DUMP``ed (all of them are permanent here)."""
    return {key: client.dump(key) for key in client.scan_iter(count=1000)}


def restore(client: redis.Redis, dumped: dict[bytes, bytes]) -> None:
    """The database exactly as ``dumped``: nothing else, nothing less."""
    client.flushdb()
    pipe = client.pipeline(transaction=False)
    for key, value in dumped.items():
        pipe.restore(key, 0, value)
    pipe.execute()


def _member(raw: bytes) -> Any:
    """A list item or set member as compared: parsed JSON without the fields the clock rewrites."""
    try:
        value = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")
    if isinstance(value, dict):
        return {k: v for k, v in sorted(value.items()) if k not in CLOCK_FIELDS}
    return value


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def state(client: redis.Redis, baseline: dict[str, set[tuple[bytes, float]]]) -> dict[str, Any]:
    """Every key's content, comparable between two runs of the same action.

    Lists keep their order; sets are sorted; a sorted set is its members (parsed) in score order,
    each with its score when that exact member had that score before the action (in
    ``baseline``), else ``"new"`` (a job moved to the Dead set is scored with the clock).
    """
    found: dict[str, Any] = {}
    for raw_key in sorted(client.scan_iter(count=1000)):
        key = raw_key.decode()
        if key in INCIDENTAL_KEYS:
            continue
        kind = client.type(raw_key).decode()
        if kind == "string":
            found[key] = client.get(raw_key).decode(errors="replace")
        elif kind == "list":
            found[key] = [_member(item) for item in client.lrange(raw_key, 0, -1)]
        elif kind == "set":
            found[key] = sorted(_canonical(_member(item)) for item in client.smembers(raw_key))
        elif kind == "hash":
            found[key] = {k.decode(): v.decode(errors="replace") for k, v in client.hgetall(raw_key).items()}
        elif kind == "zset":
            before = baseline.get(key, set())
            entries = []
            for member, score in client.zrange(raw_key, 0, -1, withscores=True):
                kept = (member, score) in before
                entries.append((score if kept else "new", _canonical(_member(member))))
            entries.sort(
                key=lambda entry: (entry[0] == "new", entry[0] if entry[0] != "new" else 0, entry[1])
            )
            found[key] = entries
        else:
            found[key] = kind
    return found


def zsets_of(client: redis.Redis) -> dict[str, set[tuple[bytes, float]]]:
    """The exact (member, score) pairs of every sorted set: what "unchanged" means in ``state``."""
    return {
        key.decode(): set(client.zrange(key, 0, -1, withscores=True))
        for key in client.scan_iter(count=1000)
        if client.type(key) == b"zset"
    }


# ---------------------------------------------------------------------------------------------
# What the real Sidekiq wrote


@dataclass(frozen=True)
class Entry:
    """One job of a sorted set, with its key as Sidekiq's pages name it (``<score>-<jid>``)."""

    raw: bytes
    score: float
    job: dict[str, Any]

    @property
    def jid(self) -> str:
        return self.job["jid"]

    @property
    def key(self) -> str:
        return f"{self.score!r}-{self.jid}"

    def backtrace(self) -> list[str]:
        """The stored backtrace: an array on 6, zlib-compressed base64 JSON on 7 and 8."""
        stored = self.job.get("error_backtrace")
        if stored is None or isinstance(stored, list):
            return stored or []
        return json.loads(zlib.decompress(base64.b64decode(stored)))


@dataclass
class Made:
    """The jobs in Redis after the real process ran, as read back from Redis."""

    retries: list[Entry]
    dead: list[Entry]
    scheduled: list[Entry]
    queues: dict[str, list[bytes]]
    busy_jid: str
    identity: str

    def queue_jids(self, name: str) -> list[str]:
        return [json.loads(raw)["jid"] for raw in self.queues[name]]


def _entries(client: redis.Redis, key: str) -> list[Entry]:
    return [Entry(m, s, json.loads(m)) for m, s in client.zrange(key, 0, -1, withscores=True)]


def _run_ruby(env: dict[str, str], *args: str) -> dict[str, list[str]]:
    done = subprocess.run(
        ["ruby", "-e", MAKE_JOBS, str(APP_FILE), *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _metrics_written(client: redis.Redis) -> bool:
    return any(
        any(name.startswith(b"CompatOkJob|") for name in client.hkeys(key))
        for key in client.scan_iter(match="j|*", count=1000)
    )


def make_data(line: int, env: dict[str, str], client: redis.Redis, workdir: Path) -> Made:
    """Run a real Sidekiq of ``line`` until every kind of job is in Redis, then kill it mid-job."""
    client.flushdb()
    with sidekiq(env, workdir, client, f"compat{line}", app=APP_FILE.name, threads=3) as process:
        identity = next(iter(client.smembers("processes"))).decode()
        made = _run_ruby(env, "run", json.dumps(WAITING))
        wait_until("the failing jobs wait in the retry set", lambda: client.zcard("retry") == 6, timeout=60)
        wait_until("the dying jobs are dead", lambda: client.zcard("dead") == 3, timeout=60)
        wait_until(
            "the heartbeat counts the busy job and every execution",
            lambda: client.hget(identity, "busy") == b"1" and int(client.get("stat:processed") or 0) >= 12,
            timeout=60,
        )
        if line >= 7:
            wait_until("execution metrics are written", lambda: _metrics_written(client), timeout=60)
        process.kill()
    for key in client.scan_iter(count=1000):
        if client.pttl(key) > 0:
            client.persist(key)  # heartbeats, work entries, metrics: they must not expire mid-test
    client.delete("compat:busy")
    made.update(_run_ruby(env, "later"))
    queues = {name: client.lrange(f"queue:{name}", 0, -1) for name in [*WAITING, "default"]}
    made_sets = Made(
        retries=_entries(client, "retry"),
        dead=_entries(client, "dead"),
        scheduled=_entries(client, "schedule"),
        queues=queues,
        busy_jid=made["busy"][0],
        identity=identity,
    )
    assert sorted(e.jid for e in made_sets.retries) == sorted(made["fail"])
    assert sorted(e.jid for e in made_sets.dead) == sorted(made["dead"])
    assert sorted(e.jid for e in made_sets.scheduled) == sorted(made["scheduled"])
    for name in WAITING:
        assert sorted(made_sets.queue_jids(name)) == sorted(made[name]), name
    return made_sets


# ---------------------------------------------------------------------------------------------
# The two sites


TOKEN = re.compile(r"""name=['"]authenticity_token['"] value=['"]([^'"]+)['"]""")


@dataclass
class Site:
    """One line's real Sidekiq::Web and our monitor, over the same data."""

    line: int
    redis: redis.Redis
    made: Made
    dumped: dict[bytes, bytes]
    sidekiq_url: str
    theirs: httpx2.Client
    ours: TestClient
    baseline_zsets: dict[str, set[tuple[bytes, float]]] = field(default_factory=dict)

    def reset(self) -> None:
        """Redis back to the snapshot taken after the real process ran."""
        restore(self.redis, self.dumped)

    def state(self) -> dict[str, Any]:
        return state(self.redis, self.baseline_zsets)

    def sidekiq_get(self, path: str) -> httpx2.Response:
        """A GET on the real Sidekiq::Web (``path`` under ``/sidekiq``), redirects not followed."""
        return self.theirs.get(self.sidekiq_url + path, follow_redirects=False)

    def ours_get(self, path: str, *, follow_redirects: bool = True) -> Any:
        return self.ours.get(PREFIX + path, follow_redirects=follow_redirects)

    def sidekiq_post(self, path: str, form: dict[str, Any]) -> httpx2.Response:
        """A form POST as Sidekiq's own pages send it: the session's CSRF token (6 and 7 check
        it, and change it after each POST, so it is read from a fresh page each time) and the
        ``Sec-Fetch-Site`` header a browser adds (8.1 checks that instead)."""
        page = self.sidekiq_get("/busy")
        assert page.status_code == 200, page.text[:300]
        data = dict(form)
        if self.line < 8:
            found = TOKEN.search(page.text)
            assert found, "Sidekiq's Busy page has no authenticity_token"
            data["authenticity_token"] = found.group(1)
        return self.theirs.post(
            self.sidekiq_url + path,
            data=data,
            headers={"Sec-Fetch-Site": "same-origin"},
            follow_redirects=False,
        )

    def ours_post(self, path: str, form: dict[str, Any]) -> Any:
        """The same form POSTed to ours, plus our CSRF field (the cookie of a prior GET)."""
        token = self.ours.cookies.get("supervisor_csrf")
        if not token:
            self.ours.get(PREFIX + "/queues")
            token = self.ours.cookies.get("supervisor_csrf")
        assert token, "our monitor set no CSRF cookie"
        return self.ours.post(
            PREFIX + path,
            data={**form, "csrf_token": token},
            headers={"Sec-Fetch-Site": "same-origin"},
            follow_redirects=False,
        )


@contextmanager
def open_site(line: int, client: redis.Redis, workdir: Path) -> Iterator[Site]:
    """Make the line's data with a real Sidekiq process, then serve it on both sides."""
    script = web_rb()
    env = {**line_environment(line), "REDIS_URL": redis_test_url()}
    made = make_data(line, env, client, workdir)
    dumped = snapshot(client)
    baseline = zsets_of(client)
    port = free_port()
    log = workdir / f"sidekiq-web-{line}.log"
    with ExitStack() as stack, log.open("wb") as out:
        web = subprocess.Popen(
            ["ruby", str(script)],
            env={**os.environ, **env, "PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        )
        stack.callback(stop, web)
        theirs = stack.enter_context(httpx2.Client(timeout=30))
        url = f"http://127.0.0.1:{port}{PREFIX}"

        def answers() -> bool:
            assert web.poll() is None, log.read_text(errors="replace")[-2000:]
            try:
                return theirs.get(url + "/stats").status_code == 200
            except httpx2.TransportError:
                return False

        wait_until(f"Sidekiq::Web {line} answers", answers, timeout=60)
        settings = Settings(redis_url=redis_test_url(), database_url="sqlite://")
        ours = stack.enter_context(monitor_client(settings))
        site = Site(line, client, made, dumped, url, theirs, ours, baseline)
        site.reset()
        yield site


class Sites:
    """The sites of the module, opened on first use (one per line), closed at the end."""

    def __init__(self, workdir: Path) -> None:
        self._workdir = workdir
        self._stack = ExitStack()
        self._client = redis.Redis.from_url(redis_test_url())
        self._open: dict[int, Site] = {}

    def get(self, line: int) -> Site:
        """The line's site, its Redis restored to the snapshot."""
        if line not in self._open:
            self._open[line] = self._stack.enter_context(open_site(line, self._client, self._workdir))
        site = self._open[line]
        site.reset()
        return site

    def close(self) -> None:
        try:
            self._stack.close()
        finally:
            self._client.flushdb()
            self._client.close()
