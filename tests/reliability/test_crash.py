"""Crash consistency: a 2xx survives SIGKILL of the service, and the store stays consistent.

The service is killed with no warning while several senders keep it busy with seed-shaped form
reports and JSON batches, then started again on the same database. Every report it had answered
with a 2xx must be there, and the store's invariants must hold (see ``ledger_checks``). This
would fail if a 2xx were sent before the commit, if SQLite's WAL lost committed frames, or if a
batch could be half-written.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx2
import pytest

from tests.reliability.conftest import Ledger
from tests.reliability.ledger_checks import invariant_violations, missing_reports, read_ledger
from tests.reliability.load import Load
from tests.reliability.service import ServiceProcess

# Reliability: the service as a process, through faults that take seconds.
pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# Enough acknowledged requests that the kill lands in the middle of steady traffic.
ACKNOWLEDGED_BEFORE_KILL = 400
LOAD_SECONDS = 8


def _wait_for_acknowledged(load: Load, count: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if sum(outcome.acknowledged for outcome in load.outcomes) >= count:
            return
        time.sleep(0.05)


@pytest.mark.timeout(90)
def test_every_acknowledged_report_survives_a_sigkill(durable_ledger: Ledger, tmp_path: Path) -> None:
    service = ServiceProcess(durable_ledger.url, tmp_path, **durable_ledger.env)
    service.start()
    try:
        load = Load(service.url, threads=6, batch_size=30, timeout=10).start()
        _wait_for_acknowledged(load, ACKNOWLEDGED_BEFORE_KILL, LOAD_SECONDS)
        service.kill()
        load.stop()

        answered = [o for o in load.outcomes if o.status is not None]
        assert answered, f"no request was answered before the kill:\n{service.log_text()}"
        assert all(o.acknowledged for o in answered), load.statuses()
        # The kill really cut requests short: some were sent and never answered.
        assert any(o.status is None for o in load.outcomes), "the kill did not land mid-load"
        assert any(o.route == "batch" and o.acknowledged for o in load.outcomes)

        service.start()  # recovery: the same database, a new process
        snapshot = read_ledger(durable_ledger.url)
        acknowledged = load.acknowledged()
        assert missing_reports(acknowledged, snapshot) == []
        assert invariant_violations(snapshot) == []

        # The restarted service reads what its predecessor stored, and takes new reports.
        with httpx2.Client(base_url=service.url, timeout=10, trust_env=False) as client:
            assert client.get(f"/api/v1/jobs/{acknowledged[-1].jid}").status_code == 200
            fresh = {"job_id": "after-crash", "arguments": "[]", "job_class": "HardWorker"}
            assert client.post("/api/v1/jobs", data=fresh).status_code == 201
    finally:
        service.stop()
