"""A real Prometheus (Debian's) scrapes a real ``serve --workers 2`` that received real reports, with
the API token as its bearer credentials and the shipped alert rules loaded, and PromQL over its
HTTP API gives the figures the reports and Sidekiq's Redis imply.

With two workers a scrape reaches one of them: the totals come out right only because every
worker's counts are added up (prometheus_client's multi-process mode), which the test checks by
making sure both workers counted reports.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import orjson
import pytest
import redis
import yaml
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import redis_test_url
from tests.debian_tools import required_tool
from tests.e2e.fault_sidekiq import HarnessError, wait_for
from tests.live_service import free_port, running_service

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(180)]

TOKEN = "prometheus-scrapes-with-this"
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "alerts.yml"
LIVE = "worker-1:41:cafecafecafe"
GONE = "worker-9:99:deaddeaddead"
DEADLINE_SECONDS = 60


@contextmanager
def running_prometheus(workdir: Path, target: str) -> Iterator[str]:
    """Prometheus on a free port, scraping ``target`` every second with the token (job
    ``supervisor``) and without it (job ``tokenless``), the shipped rules loaded; its URL."""
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {
                "job_name": "supervisor",
                "authorization": {"type": "Bearer", "credentials": TOKEN},
                "static_configs": [{"targets": [target]}],
            },
            {"job_name": "tokenless", "static_configs": [{"targets": [target]}]},
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = workdir / "prometheus.log"
    command = [
        required_tool("prometheus", "prometheus"),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for("Prometheus is ready", lambda: _ready(url), DEADLINE_SECONDS)
        except HarnessError as exc:
            pytest.fail(f"{exc}:\n{log.read_text()[-3000:]}")
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        return httpx2.get(f"{url}/-/ready", timeout=2, trust_env=False).status_code == 200
    except httpx2.TransportError:
        return False


def query(prometheus: str, promql: str) -> dict[str, float]:
    """An instant query's answer: each series (its labels as text) and its value."""
    response = httpx2.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10, trust_env=False)
    body = response.json()
    assert body["status"] == "success", body
    return {
        ",".join(f"{k}={v}" for k, v in sorted(series["metric"].items())): float(series["value"][1])
        for series in body["data"]["result"]
    }


def series(name: str, target: str, job: str = "supervisor", **labels: str) -> str:
    """How ``query`` names a series scraped from ``target``."""
    every = {"__name__": name, "instance": target, "job": job, **labels}
    return ",".join(f"{k}={v}" for k, v in sorted(every.items()))


def expect(prometheus: str, answers: dict[str, dict[str, float]]) -> None:
    """Wait until each query answers as expected (scrapes come every second)."""
    found: dict[str, dict[str, float]] = {}

    def all_answered() -> bool:
        found.update({promql: query(prometheus, promql) for promql in answers})
        return found == answers

    try:
        wait_for("PromQL gives the expected answers", all_answered, DEADLINE_SECONDS, poll=0.25)
    except HarnessError:
        pytest.fail(f"PromQL never gave the expected answers; last: {found}")


def sidekiq_at_work(client: redis.Redis) -> None:
    """What a Sidekiq 7 with one live process leaves in Redis: its heartbeat, a queue, counters,
    the Dead set."""
    now = time.time()
    info = {"hostname": "worker-1", "pid": 41, "identity": LIVE, "version": "7.3.9", "concurrency": 10,
            "queues": ["default"]}  # fmt: skip
    client.sadd("processes", LIVE)
    client.hset(LIVE, mapping={"info": orjson.dumps(info), "beat": now, "busy": 2, "quiet": "false"})
    client.sadd("queues", "default")
    for n in range(3):
        job = {"class": "Billing", "jid": f"waiting{n}", "args": [n], "enqueued_at": now - 120 + n}
        client.lpush("queue:default", orjson.dumps(job))
    client.set("stat:processed", 1234)
    client.set("stat:failed", 7)
    for n in range(2):
        client.zadd("dead", {orjson.dumps({"class": "Export", "jid": f"dead{n}", "args": []}): now - n})


class Reporter:
    """Sends reports as the gem's batches do, each on a new connection (so both workers get some)."""

    def __init__(self, client: httpx2.Client) -> None:
        self._client = client
        self.sent: dict[str, int] = {}

    def send(self, *events: dict[str, Any]) -> None:
        response = self._client.post("/api/v1/events", json={"events": list(events)})
        assert response.status_code == 200 and response.json()["rejected"] == 0, response.text
        for event in events:
            self.sent[event["event"]] = self.sent.get(event["event"], 0) + 1


def event(kind: str, jid: str, job_class: str, at: float, **more: Any) -> dict[str, Any]:
    return {"event": kind, "job_id": jid, "job_class": job_class, "queue": "default", "arguments": [1],
            "at": at, **more}  # fmt: skip


def reports_per_worker(directory: Path) -> dict[str, float]:
    """Each worker's count of received reports, read from its own file of the shared directory."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        samples = [s for m in MultiProcessCollector.merge([str(path)]) for s in m.samples]
        counts[path.stem] = sum(s.value for s in samples if s.name == "supervisor_reports_received_total")
    return counts


def workers_that_counted(directory: Path) -> int:
    return sum(1 for count in reports_per_worker(directory).values() if count)


def test_a_real_prometheus_scrapes_two_workers_and_promql_gives_the_figures(empty_postgres_url, tmp_path):
    client = redis.Redis.from_url(redis_test_url())
    client.flushdb()
    sidekiq_at_work(client)
    shared = tmp_path / "metrics"
    env = {
        "REDIS_URL": redis_test_url(),
        "SUPERVISOR_API_TOKEN": TOKEN,
        "SUPERVISOR_METRICS_CACHE_SECONDS": "1",
        "PROMETHEUS_MULTIPROC_DIR": str(shared),
    }
    try:
        with (
            running_service(empty_postgres_url, tmp_path, workers=2, **env) as service,
            httpx2.Client(
                base_url=service.url,
                headers={"Authorization": f"Bearer {TOKEN}"},
                limits=httpx2.Limits(max_keepalive_connections=0),  # a new connection for each
                timeout=10,
                trust_env=False,
            ) as http,
        ):
            reporter = Reporter(http)
            start = time.time() - 600
            # Billing: 20 runs of 0.2 s and 10 of 3 s, started by the live process.
            for n in range(30):
                seconds = 0.2 if n < 20 else 3.0
                began = start + n
                worker = {"identity": LIVE, "hostname": "worker-1", "pid": 41}
                reporter.send(
                    event("started", f"billing{n}", "Billing", began, worker=worker),
                    event("complete", f"billing{n}", "Billing", began + seconds),
                )
            for n in range(4):
                error = {"class": "Net::ReadTimeout", "message": "timed out"}
                reporter.send(event("failed", f"export{n}", "Export", start + n, error=error))
            # Started by a process that stopped heartbeating: orphaned.
            reporter.send(event("started", "lost", "Import", start, worker={"identity": GONE}))
            # Until both workers have counted reports of their own (each report on a new connection).
            extra = 0
            while workers_that_counted(shared) < 2 and extra < 200:
                reporter.send(event("queued", f"extra{extra}", "Mailer", time.time()))
                extra += 1
            assert workers_that_counted(shared) == 2, reports_per_worker(shared)

            target = service.url.removeprefix("http://")
            with running_prometheus(tmp_path, target) as prometheus:
                sent = reporter.sent
                expect(
                    prometheus,
                    {
                        'up{job="supervisor"}': {series("up", target): 1},
                        'up{job="tokenless"}': {series("up", target, job="tokenless"): 0},
                        "sum(supervisor_reports_received_total)": {"": sum(sent.values())},
                        'sum(supervisor_reports_received_total{kind="complete"})': {"": 30},
                        'supervisor_ledger_jobs{status="complete"}': {
                            series("supervisor_ledger_jobs", target, app="default", status="complete"): 30
                        },
                        'sum(supervisor_uncompleted_jobs{liveness="orphaned"})': {"": 1},
                        'sum(supervisor_job_duration_seconds_count{class="Billing"})': {"": 30},
                        'sum(supervisor_job_duration_seconds_bucket{class="Billing", le="0.25"})': {"": 20},
                        'sum(supervisor_job_failures_total{class="Export"})': {"": 4},
                        "sum(supervisor_database_up) + sum(supervisor_redis_up)": {"": 2},
                        'sum(sidekiq_queue_enqueued_jobs{name="default"})': {"": 3},
                        "sum(sidekiq_processed_jobs_total)": {"": 1234},
                        "sum(sidekiq_dead_jobs)": {"": 2},
                        "sum(sidekiq_busy_workers)": {"": 2},
                        "sum(sidekiq_workers)": {"": 10},
                        # The shipped rule sees the orphan at once (it fires after 10 minutes).
                        'count(ALERTS{alertname="SidekiqJobsOrphaned", alertstate="pending"})': {"": 1},
                    },
                )
                buckets = 'sum by (le) (supervisor_job_duration_seconds_bucket{class="Billing"})'
                median = query(prometheus, f"histogram_quantile(0.5, {buckets})")[""]
                assert 0.1 < median <= 0.25  # 20 of the 30 runs took 0.2 s
                latency = query(prometheus, 'max(sidekiq_queue_latency_seconds{name="default"})')[""]
                assert latency >= 118

                rules = httpx2.get(f"{prometheus}/api/v1/rules", timeout=10, trust_env=False).json()
                (group,) = rules["data"]["groups"]
                assert len(group["rules"]) == 9
                assert {rule["health"] for rule in group["rules"]} == {"ok"}
    finally:
        client.flushdb()
        client.close()
