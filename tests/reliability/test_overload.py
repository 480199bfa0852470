"""Overload: past SUPERVISOR_INGEST_QUEUE_LIMIT waiting reports, ingest answers 503 with
Retry-After at once instead of queueing without bound, and the reports already waiting are
still stored and acknowledged.

The writer is held up by the ledger's write lock (see ``locks``), so reports pile up exactly as
they would behind a slow disk.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx2
import pytest

from tests.reliability.ledger_checks import invariant_violations, missing_reports, read_ledger
from tests.reliability.load import ARGUMENTS, Sent
from tests.reliability.locks import write_lock
from tests.reliability.probes import Probe, probe
from tests.reliability.service import ServiceProcess

# Reliability: the service as a process, through faults that take seconds.
pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUEUE_LIMIT = 50
# The writer holds one batch in its (stuck) transaction; the next one waits within the limit;
# a third would make 60 waiting reports, past the limit.
BATCH = 30
AT = 1_700_000_000


def _batch(name: str) -> tuple[dict[str, object], list[Sent]]:
    events = [
        {"event": "queued", "job_id": f"{name}-{n}", "arguments": ARGUMENTS, "job_class": "K", "at": AT}
        for n in range(BATCH)
    ]
    return {"events": events}, [Sent(f"{name}-{n}", "queued", AT * 1_000_000) for n in range(BATCH)]


@pytest.mark.timeout(60)
def test_a_full_queue_answers_503_at_once_and_keeps_what_waits(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    service = ServiceProcess(url, tmp_path, SUPERVISOR_INGEST_QUEUE_LIMIT=str(QUEUE_LIMIT))
    service.start()
    waiting = [_batch("first"), _batch("second")]
    overflow_body, overflow_sent = _batch("overflow")
    parked: list[Probe] = []
    try:
        with httpx2.Client(base_url=service.url, timeout=30, trust_env=False) as client:
            # Held for well under the 10 s busy timeout: the writer then goes on normally.
            with write_lock(url):
                senders = [
                    threading.Thread(
                        target=lambda body=body: parked.append(
                            probe(client, "POST", "/api/v1/events", json=body)
                        )
                    )
                    for body, _ in waiting
                ]
                for sender in senders:
                    sender.start()
                    time.sleep(0.2)  # the first is taken by the writer, the second waits
                overflow = probe(client, "POST", "/api/v1/events", json=overflow_body)
                still_waiting = all(sender.is_alive() for sender in senders)
            for sender in senders:
                sender.join(timeout=20)
    finally:
        service.stop()

    # Refused at once: while the writer was still stuck (the waiting batches were still waiting),
    # with a JSON error and when to retry.
    assert overflow.is_json_error(503) and overflow.retry_after, overflow
    assert still_waiting, "the waiting batches were answered before the overflow: nothing was shown"
    # What was waiting is stored and acknowledged once the writer could go on; nothing else is.
    assert [p.status for p in parked] == [200, 200]
    snapshot = read_ledger(url)
    assert missing_reports([sent for _, batch in waiting for sent in batch], snapshot) == []
    assert not {sent.jid for sent in overflow_sent} & {jid for jid, *_ in snapshot.jobs}
    assert invariant_violations(snapshot) == []
