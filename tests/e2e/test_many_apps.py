"""End to end: one supervisor watches two Sidekiq apps at once, each on a Redis server of its own.

The app ``shop`` runs Debian's Sidekiq 6.4.1 on the tests' Redis; ``billing`` runs Sidekiq 8.1.7
on a second ``redis-server`` started here. Both report through the seed's middlewares, pointed
at ``/apps/NAME`` of one ``serve`` whose configuration file names the two apps. Each app's ledger
holds its own jobs only; a restart in one app pushes into its own Redis only, in its Sidekiq
line's layout, and the job runs again there; each app's ``/sidekiq`` shows its own Redis.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis

from tests.conftest import redis_test_url
from tests.e2e.real_sidekiq import (
    enqueue,
    line_environment,
    require_sidekiq,
    sidekiq,
    sidekiq_env,
    wait_until,
)
from tests.e2e.real_sidekiq import job_status as status
from tests.live_service import free_port, running_service, stop

# Real Sidekiq processes, a second Redis server and the service as a process: not in the fast lane.
pytestmark = pytest.mark.e2e

# Sidekiq fetches with BRPOP and a 2 s timeout; the shutdown waits 1 s (-t 1) for running jobs.
THREADS = 2


@contextmanager
def redis_server(workdir: Path) -> Iterator[redis.Redis]:
    """A ``redis-server`` of its own on a free port, keeping nothing on disk, stopped at the end."""
    folder = workdir / "redis-billing"
    folder.mkdir()
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    command += ["--save", "", "--appendonly", "no"]
    with (folder / "redis.log").open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=folder)
    client = redis.Redis(host="127.0.0.1", port=port, db=0)
    try:
        wait_until("the second redis-server answers", lambda: _answers(client, process), timeout=20)
        yield client
    finally:
        client.close()
        stop(process)


def _answers(client: redis.Redis, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        pytest.fail(f"redis-server exited with {process.returncode}")
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def url_of(client: redis.Redis) -> str:
    kwargs = client.connection_pool.connection_kwargs
    return f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs['db']}"


def write_config(path: Path, apps: dict[str, tuple[redis.Redis, int]]) -> Path:
    tables = [
        f'[apps.{name}]\nredis_url = "{url_of(client)}"\nsidekiq_version = {line}\n'
        for name, (client, line) in apps.items()
    ]
    path.write_text("\n".join(tables))
    return path


def jobs_of(api: httpx2.Client, **params: Any) -> list[dict[str, Any]]:
    """Every job of the app's ledger (one page)."""
    response = api.get("/api/v1/jobs", params={"status": "all", "limit": 1000, **params})
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    return page["data"]


def contents(client: redis.Redis) -> dict[bytes, bytes | None]:
    """Every key of a Redis database with its value, serialized."""
    return {key: client.dump(key) for key in client.keys("*")}


def sidekiq_stats(api: httpx2.Client) -> dict[str, Any]:
    response = api.get("/sidekiq/stats")
    assert response.status_code == 200, response.text
    return response.json()


@dataclass
class App:
    """One Sidekiq app of the test: its API (under ``/apps/NAME``), its Redis, and how many jobs of
    each kind it pushes (other numbers in each app, so that each figure tells the apps apart)."""

    name: str
    line: int
    api: httpx2.Client
    redis: redis.Redis
    quick_jobs: int
    parked_jobs: int
    env: dict[str, str] = field(init=False)
    quick: list[str] = field(default_factory=list)
    flaky: str = ""
    parked: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # A Sidekiq of the app's line on its Redis, whose seed middlewares report to its URLs.
        self.env = {
            **sidekiq_env(self.api, line=self.line),
            "REDIS_URL": url_of(self.redis),
            "E2E_APP": "parked_jobs",
            "E2E_PARKED_QUEUE": self.parked_queue,
        }

    @property
    def parked_queue(self) -> str:
        return f"{self.name}-parked"

    @property
    def order(self) -> str:
        """The argument of its FlakyOnceJob (which raises until ``e2e:allow:ORDER`` is set)."""
        return f"{self.name.upper()}-1"

    @property
    def jids(self) -> set[str]:
        return {*self.quick, self.flaky, *self.parked}

    def push(self) -> None:
        """Quick jobs, a job that fails (its start is never completed) and jobs parked in a queue
        that no Sidekiq serves; every argument names the app."""
        jobs = [("QuickJob", [n, f"user{n}@{self.name}.example"]) for n in range(self.quick_jobs)]
        jobs.append(("FlakyOnceJob", [self.order]))
        jobs += [("ParkedJob", [f"{self.name}-p{n}"]) for n in range(self.parked_jobs)]
        jids = enqueue(self.env, jobs)
        self.quick, (self.flaky, *self.parked) = jids[: self.quick_jobs], jids[self.quick_jobs :]

    def settled(self) -> bool:
        """The quick jobs completed, the flaky one started (and failed)."""
        return (
            all(status(self.api, jid) == "complete" for jid in self.quick)
            and status(self.api, self.flaky) == "started"
        )


@contextmanager
def sidekiqs(apps: tuple[App, ...], workdir: Path, run: str) -> Iterator[None]:
    """A Sidekiq of each app, each on its own Redis, stopped (SIGTERM) at the end."""
    with ExitStack() as stack:
        for app in apps:
            name = f"{app.name}-{run}"
            stack.enter_context(sidekiq(app.env, workdir, app.redis, name, threads=THREADS))
        yield


# Sidekiq 6 writes the times of a payload as float seconds, Sidekiq 8 as integer milliseconds.
STAMP_TYPES = {6: float, 8: int}


# Four Sidekiq boots of two lines and two restarts: generous, for a loaded machine.
@pytest.mark.timeout(240)
def test_two_apps_on_two_redis_servers_keep_their_own_jobs_restarts_and_figures(tmp_path, redis_client):
    require_sidekiq("faraday")
    line_environment(8)  # skips (fails in CI) without Sidekiq 8, before anything starts
    with redis_server(tmp_path) as billing_redis:
        config = write_config(
            tmp_path / "apps.toml", {"shop": (redis_client, 6), "billing": (billing_redis, 8)}
        )
        settings = {
            "REDIS_URL": redis_test_url(),
            # Neither app's line: each app's pushes follow its own sidekiq_version.
            "SUPERVISOR_SIDEKIQ_VERSION": "7",
            "SUPERVISOR_CONFIG": str(config),
        }
        with (
            running_service(f"sqlite:///{tmp_path / 'ledger.db'}", tmp_path, **settings) as service,
            httpx2.Client(base_url=service.url, timeout=10, trust_env=False) as root,
            httpx2.Client(base_url=f"{service.url}/apps/shop", timeout=10, trust_env=False) as shop_api,
            httpx2.Client(base_url=f"{service.url}/apps/billing", timeout=10, trust_env=False) as billing_api,
        ):
            shop = App("shop", 6, shop_api, redis_client, quick_jobs=3, parked_jobs=2)
            billing = App("billing", 8, billing_api, billing_redis, quick_jobs=4, parked_jobs=3)
            run_two_apps(root, shop, billing, tmp_path)


def run_two_apps(root: httpx2.Client, shop: App, billing: App, workdir: Path) -> None:
    apps = (shop, billing)
    pairs = ((shop, billing), (billing, shop))

    # Both apps at work at once.
    with sidekiqs(apps, workdir, "first"):
        for app in apps:
            app.push()
        for app in apps:
            wait_until(f"{app.name}: the quick jobs complete, the flaky one starts", app.settled)
    # Both Sidekiqs stopped: nothing moves in either Redis now.

    # Each ledger holds exactly its own jobs; the unprefixed URLs are the default app's (shop).
    # Whatever the jids, too: every job's arguments name its own app, and a search for the other
    # app's name finds nothing.
    for app, other in pairs:
        assert {job["jid"] for job in jobs_of(app.api)} == app.jids
        assert_only_arguments_of(app.api, app.name, other.name)
        assert status(other.api, app.flaky) is None
    assert jobs_of(root) == jobs_of(shop.api)

    # Each app's /sidekiq shows its own Redis: its counters (flushed as each Sidekiq stopped),
    # its queues, its Sidekiq line.
    for app, other in pairs:
        figures = wait_until(
            f"{app.name}'s counters", lambda app=app: counted(app.api, processed=app.quick_jobs + 1, failed=1)
        )
        assert figures["sidekiq"]["enqueued"] == app.parked_jobs
        assert ("store_name" in figures["redis"]) is (app.line >= 8)  # what Sidekiq 8's /stats adds
        sizes = app.api.get("/sidekiq/stats/queues").json()
        assert sizes == {app.parked_queue: app.parked_jobs, "default": 0}
        queues = app.api.get("/sidekiq/queues")
        assert queues.status_code == 200
        assert app.parked_queue in queues.text and other.parked_queue not in queues.text
        dashboard = app.api.get("/sidekiq")
        assert dashboard.status_code == 200
        assert f'data-stat="processed">{app.quick_jobs + 1}<' in dashboard.text
        assert f'href="/apps/{app.name}/sidekiq/queues"' in dashboard.text  # its links stay in the app
    assert root.get("/sidekiq/stats/queues").json() == shop.api.get("/sidekiq/stats/queues").json()

    # The overview lists both, each with its own Redis's figures and its ledger's.
    overview = {entry["name"]: entry for entry in root.get("/api/v1/apps").json()["data"]}
    assert list(overview) == ["shop", "billing"]
    for app in apps:
        entry = overview[app.name]
        assert (entry["redis"], entry["url"]) == ("ok", f"/apps/{app.name}/")
        assert (entry["processed_today"], entry["failed_today"]) == (app.quick_jobs + 1, 1)
        assert entry["enqueued"] == app.parked_jobs
    page = root.get("/apps")
    assert page.status_code == 200
    assert 'href="/apps/shop/"' in page.text and 'href="/apps/billing/"' in page.text

    # A restart in one app takes that app's lost job alone and pushes it into that app's Redis
    # alone, with the times in that app's Sidekiq line's layout.
    copies = {}
    for app, other in pairs:
        copy = restart_one(app.api, app.flaky, app.redis, untouched=other.redis)
        assert (copy["class"], copy["args"]) == ("FlakyOnceJob", [app.order])
        assert_stamps(copy, STAMP_TYPES[app.line], seconds=app.line < 8)
        copies[app.name] = copy["jid"]
        app.redis.set(f"e2e:allow:{app.order}", 1)

    # The copies run again, each in its own app, and complete there.
    with sidekiqs(apps, workdir, "again"):
        for app in apps:
            wait_until(
                f"{app.name}: the restarted job completes",
                lambda app=app: status(app.api, copies[app.name]) == "complete",
                timeout=60,
            )
    for app, other in pairs:
        assert app.api.get(f"/api/v1/jobs/{copies[app.name]}").json()["restarted_from"] == app.flaky
        assert status(other.api, copies[app.name]) is None
        assert {job["jid"] for job in jobs_of(app.api)} == app.jids - {app.flaky} | {copies[app.name]}
        assert_only_arguments_of(app.api, app.name, other.name)


def assert_only_arguments_of(api: httpx2.Client, own: str, other: str) -> None:
    found = jobs_of(api)
    assert found
    for job in found:
        words = json.dumps(job["arguments"]).lower()
        assert own in words and other not in words, job
    assert jobs_of(api, q=other) == []


def counted(api: httpx2.Client, *, processed: int, failed: int) -> dict[str, Any] | None:
    """The app's ``/sidekiq/stats`` once its counters read ``processed`` and ``failed``."""
    figures = sidekiq_stats(api)
    counters = figures["sidekiq"]
    return figures if (counters["processed"], counters["failed"]) == (processed, failed) else None


def restart_one(api: httpx2.Client, lost: str, own: redis.Redis, *, untouched: redis.Redis) -> dict[str, Any]:
    """Restart ``api``'s app's uncompleted jobs: only ``lost`` is restarted, its copy is the one
    new entry of its own Redis's ``default`` queue, and ``untouched`` is left exactly as it was.
    The copy's payload, as pushed."""
    before = contents(untouched)
    assert own.llen("queue:default") == 0
    response = api.post("/api/v1/jobs/restart")
    assert response.status_code == 200, response.text
    report = response.json()
    assert [row["jid"] for row in report["restarted"]] == [lost], report
    assert report["skipped"] == []
    new_jid = report["restarted"][0]["new_jid"]
    pushed = [json.loads(raw) for raw in own.lrange("queue:default", 0, -1)]
    assert [payload["jid"] for payload in pushed] == [new_jid]
    assert contents(untouched) == before
    return pushed[0]


def assert_stamps(payload: dict[str, Any], kind: type, *, seconds: bool) -> None:
    """``created_at`` and ``enqueued_at`` of the type and unit of the app's Sidekiq line."""
    for key in ("created_at", "enqueued_at"):
        value = payload[key]
        assert type(value) is kind, (key, value)
        # Seconds since 1970 are about 1.8e9 today; milliseconds about 1.8e12.
        assert (value < 1e11) is seconds, (key, value)
