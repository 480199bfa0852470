"""An outage is logged in a line when it starts and a line when it ends, with the count between."""

from __future__ import annotations

import logging

from sidekiq_supervisor.services.outage_log import OutageLog


def test_a_thousand_failures_are_two_lines(caplog):
    log = OutageLog(logging.getLogger("outage-test"), "the database")
    caplog.set_level(logging.INFO, logger="outage-test")

    log.succeeded()
    for _ in range(1000):
        log.failed(ConnectionError("connection refused\nDETAIL: a long driver message"))
    log.succeeded()
    log.succeeded()

    assert [record.getMessage() for record in caplog.records] == [
        "the database became unavailable: ConnectionError: connection refused",
        caplog.records[1].getMessage(),
    ]
    assert (
        caplog.records[1].getMessage().startswith("the database is available again after 1000 failures over ")
    )


def test_without_a_success_a_failure_after_a_quiet_spell_is_a_new_outage(caplog, monkeypatch):
    clock = iter([0.0, 1.0, 100.0]).__next__
    monkeypatch.setattr("sidekiq_supervisor.services.outage_log.time.monotonic", clock)
    log = OutageLog(logging.getLogger("outage-test"), "reads", forget_after=60)
    caplog.set_level(logging.INFO, logger="outage-test")

    for _ in range(3):
        log.failed(TimeoutError("timed out"))

    assert [record.getMessage() for record in caplog.records] == [
        "reads became unavailable: TimeoutError: timed out",
        "reads became unavailable: TimeoutError: timed out (2 failures before)",
    ]
