"""Database outages: ingest answers 503 + Retry-After quickly, reads a JSON error, nothing is
half-written, and the service recovers by itself once the database is back.

PostgreSQL is reached through a proxy the test cuts (connections reset and refused, as when the
server crashes or restarts) or blackholes (nothing answers, as in a partition). SQLite cannot
go away like a server; its outage is another process holding the write lock past the 10 s busy
timeout (a long backup, a stuck migration), during which reads must go on.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import pytest

from tests.reliability.known_bugs import check_bound
from tests.reliability.ledger_checks import invariant_violations, missing_reports, read_ledger
from tests.reliability.load import Load, Outcome
from tests.reliability.locks import write_lock
from tests.reliability.probes import concurrently, probe
from tests.reliability.proxy import TcpProxy
from tests.reliability.service import ServiceProcess

# Reliability: the service as a process, through faults that take seconds.
pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# The promise: while the database is away, no request waits longer than this for its answer.
ANSWER_BOUND_SECONDS = 10.0
# Once the database is back, the service takes reports again within this, with no restart.
RECOVERY_SECONDS = 10.0
READS = ("/api/v1/jobs", "/api/v1/jobs?status=uncompleted&q=customer", "/api/v1/stats", "/api/v1/durations")


def _report(jid: str) -> dict[str, str]:
    return {"job_id": jid, "arguments": '["outage"]', "job_class": "OutageWorker"}


def _recovered(client: httpx2.Client) -> float:
    """Seconds until a new report is stored again; fails past RECOVERY_SECONDS."""
    start = time.monotonic()
    attempt = 0
    while time.monotonic() - start < RECOVERY_SECONDS:
        attempt += 1
        try:
            if client.post("/api/v1/jobs", data=_report(f"recovered-{attempt}")).status_code == 201:
                return time.monotonic() - start
        except httpx2.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"no report stored within {RECOVERY_SECONDS} s of the database's return")


def _stored_parts(outcome: Outcome, keys: set[tuple[str, str, int | None]]) -> int:
    return sum((sent.jid, sent.kind, sent.at) in keys for sent in outcome.reports)


@pytest.mark.timeout(60)
def test_postgres_cut_gets_quick_503s_json_read_errors_and_recovers_alone(
    proxied_postgres: tuple[str, TcpProxy], postgres_url: str, tmp_path: Path
) -> None:
    url, proxy = proxied_postgres
    service = ServiceProcess(url, tmp_path)
    service.start()
    try:
        with (
            Load(service.url, threads=3, batch_size=30, timeout=ANSWER_BOUND_SECONDS + 5, pause=0.02) as load,
            httpx2.Client(base_url=service.url, timeout=ANSWER_BOUND_SECONDS + 5, trust_env=False) as client,
        ):
            time.sleep(0.5)
            cut = time.monotonic()
            proxy.cut()
            time.sleep(0.5)
            during = [probe(client, "POST", "/api/v1/jobs", data=_report("during-cut"))]
            during += [probe(client, "GET", path) for path in (*READS, "/healthz")]
            time.sleep(0.5)
            restored = time.monotonic()
            proxy.restore()
            _recovered(client)
            after = probe(client, "GET", READS[0])
            time.sleep(0.3)  # a little steady traffic after the return
    finally:
        service.stop()

    # The log tells the outage in a line when it starts and one when it ends, not a traceback a batch.
    log = service.full_log()
    assert "Traceback" not in log, log[-3000:]
    assert log.count("the database (storing reports) became unavailable") == 1, log[-3000:]
    assert log.count("the database (storing reports) is available again after") == 1, log[-3000:]
    assert log.count("became unavailable") <= 3, log[-3000:]  # storing, reading, health at most once each

    # While cut: the ingest probe got 503 + Retry-After, every read and /healthz a JSON 503.
    assert [p.what for p in during if not p.is_json_error(503)] == [], during
    assert during[0].retry_after is not None
    assert after.status == 200

    # Under load across the cut: every request was answered, within the bound, with a 2xx or a
    # 503 that says when to retry; some really met the outage, and traffic flowed after it.
    outcomes = load.outcomes
    assert [o for o in outcomes if o.status is None] == []
    check_bound("answers under load", [o.seconds for o in outcomes], ANSWER_BOUND_SECONDS, None)
    assert {o.status for o in outcomes} <= {200, 201, 503}, load.statuses()
    refused = [o for o in outcomes if o.status == 503]
    assert refused and all(o.retry_after for o in refused)
    assert any(o.acknowledged and o.sent > restored for o in outcomes)

    # Nothing acknowledged is lost; nothing refused during the cut is stored, even in part.
    snapshot = read_ledger(postgres_url)
    keys = snapshot.event_keys()
    assert missing_reports(load.acknowledged(), snapshot) == []
    assert [o for o in refused if cut < o.sent and o.answered < restored and _stored_parts(o, keys)] == []
    # A batch is one transaction: all of its reports are stored, or none.
    assert [o for o in outcomes if 0 < _stored_parts(o, keys) < len(o.reports) and o.route == "batch"] == []
    assert invariant_violations(snapshot) == []


@pytest.mark.timeout(60)
def test_postgres_partition_gets_bounded_answers(
    proxied_postgres: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    url, proxy = proxied_postgres
    service = ServiceProcess(url, tmp_path)
    service.start()
    try:
        with httpx2.Client(base_url=service.url, timeout=ANSWER_BOUND_SECONDS, trust_env=False) as client:
            assert client.post("/api/v1/jobs", data=_report("before")).status_code == 201
            proxy.blackhole()
            during = concurrently(
                lambda: probe(client, "POST", "/api/v1/jobs", data=_report("during-partition")),
                lambda: probe(client, "GET", READS[0]),
            )
            proxy.restore()
            _recovered(client)
    finally:
        service.stop(grace=2)
    check_bound(
        "answers during a partition",
        [p.seconds if p.status else None for p in during],
        ANSWER_BOUND_SECONDS,
        None,
    )
    assert during[0].is_json_error(503) and during[0].retry_after is not None
    assert during[1].is_json_error(503)


@pytest.mark.timeout(60)
def test_sqlite_write_lock_past_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    service = ServiceProcess(url, tmp_path)
    service.start()
    # The busy timeout is 10 s: a 503 needs that long, plus a little slack.
    bound = 10 + 2.5
    try:
        with httpx2.Client(base_url=service.url, timeout=bound, trust_env=False) as client:
            assert client.post("/api/v1/jobs", data=_report("before")).status_code == 201
            with write_lock(url):
                batch = {"events": [{"event": "queued", **_report("locked-batch")}]}
                *ingest, read = concurrently(
                    lambda: probe(client, "POST", "/api/v1/jobs", data=_report("locked-1")),
                    lambda: probe(client, "POST", "/api/v1/events", json=batch),
                    lambda: probe(client, "POST", "/api/v1/jobs/locked-1/started", data=_report("x")),
                    # WAL: readers never wait for the writer, so reads answer at once meanwhile.
                    lambda: probe(client, "GET", READS[1]),
                )
            _recovered(client)
    finally:
        service.stop(grace=2)
    # Answered while the write lock was still held (a read waiting for it would have met the
    # request deadline's 503 first).
    assert read.status == 200, read
    answered = [p for p in ingest if p.status is not None]
    assert all(p.is_json_error(503) and p.retry_after for p in answered), answered
    check_bound(
        "ingest behind a held SQLite write lock",
        [p.seconds if p.status else None for p in ingest],
        bound,
        None,
    )
