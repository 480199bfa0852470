"""Graceful shutdown: on SIGTERM the service stops accepting, answers what it took, exits cleanly.

To have requests surely in flight at the signal, the test holds the ledger's write lock (see
``locks``): every sender's request is then accepted and parked in the group-commit queue. SIGTERM
comes, a new connection must be refused, the lock is released, and every parked request must
get its 2xx (the writer commits what is pending before it stops); nothing acknowledged may be
missing. A service that dropped parked requests, or stopped its writer before answering them,
fails here.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest

from tests.reliability.ledger_checks import invariant_violations, missing_reports, read_ledger
from tests.reliability.load import Load
from tests.reliability.locks import write_lock
from tests.reliability.service import ServiceProcess

# Reliability: the service as a process, through faults that take seconds.
pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SENDERS = 4
# Bounds for what happens in a fraction of a second on an idle machine: waited for, not slept.
PARK_BOUND_SECONDS = 30
LISTENER_CLOSE_BOUND_SECONDS = 30


def _new_connection_refused(url: str) -> bool:
    """Whether a new request goes unserved: refused, or (a connection that reached the listen
    backlog just as the listener closed) dropped without an answer. An answer of any status is
    a request served after SIGTERM."""
    try:
        httpx2.get(f"{url}/healthz", timeout=2, trust_env=False)
    except (httpx2.ConnectError, httpx2.RemoteProtocolError):
        return True
    return False


QUIET_SECONDS = 0.5
_last_seen: dict[int, tuple[int, float]] = {}


def _all_parked(load: Load) -> bool:
    """All senders in flight, and no answer for ``QUIET_SECONDS``: none can be answered now."""
    answered, now = len(load.outcomes), time.monotonic()
    count, since = _last_seen.get(id(load), (-1, now))
    if answered != count:
        _last_seen[id(load)] = (answered, now)
        return False
    return load.in_flight() == SENDERS and now - since >= QUIET_SECONDS


def _wait_until(what: str, check: Callable[[], bool], bound: float) -> bool:
    deadline = time.monotonic() + bound
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {bound} s")
        time.sleep(0.05)
    return True


@pytest.mark.timeout(120)
def test_sigterm_answers_in_flight_requests_commits_them_and_exits(ledger_url: str, tmp_path: Path) -> None:
    service = ServiceProcess(ledger_url, tmp_path)
    service.start()
    try:
        with Load(service.url, threads=SENDERS, batch_size=30, timeout=30) as load:
            time.sleep(0.3)  # steady traffic first
            with write_lock(ledger_url):
                # Every sender waits on a parked request: all are in flight, and none has been
                # answered for a while (a request that was committing before the lock has finished).
                _wait_until("every sender's request is parked", lambda: _all_parked(load), PARK_BOUND_SECONDS)
                signalled = time.monotonic()
                service.signal(signal.SIGTERM)
                # uvicorn checks for a signal every 0.1 s, then closes its listener first.
                refused = _wait_until(
                    "the listener closes",
                    lambda: _new_connection_refused(service.url),
                    LISTENER_CLOSE_BOUND_SECONDS,
                )
                assert service.process is not None and service.process.poll() is None
            exit_code = service.wait(30)
        # uvicorn re-raises the SIGTERM it caught once its shutdown is done, so that the parent
        # sees why it ended: the process ends "killed by SIGTERM" (shell status 143), which
        # systemd and Kubernetes count as a clean stop. A traceback's 1 or a hang is not.
        assert exit_code in (0, -signal.SIGTERM), service.log_text()
        assert refused, "a new connection was accepted after SIGTERM"

        in_flight = [o for o in load.outcomes if o.sent < signalled < o.answered]
        assert len(in_flight) == SENDERS, load.statuses()
        # Every request sent before the signal was answered with a 2xx, parked ones included;
        # after it, requests only failed to connect.
        before = [o for o in load.outcomes if o.sent < signalled]
        assert [o for o in before if not o.acknowledged] == []
        assert {o.status for o in load.outcomes if o.sent > signalled} <= {None}

        snapshot = read_ledger(ledger_url)
        assert missing_reports(load.acknowledged(), snapshot) == []
        assert invariant_violations(snapshot) == []
    finally:
        service.stop()
