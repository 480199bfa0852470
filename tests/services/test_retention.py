"""Retention on both databases: old completed jobs and old history go, roll-ups keep their durations."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from sidekiq_supervisor.domain.durations import DurationOrigin, summarize
from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.domain.rollups import Grain
from sidekiq_supervisor.services.retention import DAY_MICROS, Pruner
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.rollups import rollup_summary
from sidekiq_supervisor.store.schema import duration_rollups, job_events, jobs
from sidekiq_supervisor.store.writer import write_reports
from sidekiq_supervisor.web.app import create_app

NOW = 1_800_000_000_000_000
SECOND = 1_000_000


def store(engine, jid: str, *events: tuple[str, int], recorded: int | None = None) -> None:
    """Reports received when they happened (at the latest one's time), unless ``recorded`` says."""
    reports = [Report(jid, EventKind(kind), at, "Mailer", "default", "[1]") for kind, at in events]
    received = recorded if recorded is not None else max(at for _, at in events)
    with write_transaction(engine) as connection:
        write_reports(connection, reports, received)


def jids(engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(select(jobs.c.jid)).scalars())


def events_of(engine, jid: str) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(select(job_events.c.kind).where(job_events.c.jid == jid)).scalars())


def pruner(engine, days: float = 30, history_days: float = 0, **options) -> Pruner:
    return Pruner(
        engine, retention_days=days, history_retention_days=history_days, clock=lambda: NOW, **options
    )


def test_completed_jobs_older_than_the_retention_go_with_their_history(engine):
    old = NOW - 31 * DAY_MICROS
    store(engine, "old-done", ("queued", old), ("started", old + SECOND), ("complete", old + 3 * SECOND))
    store(engine, "recent-done", ("queued", NOW - DAY_MICROS), ("complete", NOW - DAY_MICROS + SECOND))
    store(engine, "old-running", ("queued", old), ("started", old + SECOND))
    store(engine, "old-queued", ("queued", old))

    report = pruner(engine).prune()

    assert report.jobs == 1
    assert jids(engine) == {"recent-done", "old-running", "old-queued"}
    assert events_of(engine, "old-done") == []
    assert sorted(events_of(engine, "old-running")) == ["queued", "started"]


def test_every_pruned_job_is_counted_once_in_the_rollups_across_batches_and_passes(engine):
    base = NOW - 40 * DAY_MICROS
    durations = [(n % 7 + 1) * SECOND for n in range(25)]
    for n, duration in enumerate(durations):
        start = base + n * 60 * SECOND
        timeline = (("queued", start - SECOND), ("started", start), ("complete", start + duration))
        store(engine, f"job-{n:02d}", *timeline)

    assert pruner(engine, batch_size=4, pause_seconds=0).prune().jobs == 25
    assert pruner(engine, batch_size=4, pause_seconds=0).prune().jobs == 0

    with engine.connect() as connection:
        started = rollup_summary(connection, Grain.PRUNED, DurationOrigin.STARTED, "Mailer")
        queued = rollup_summary(connection, Grain.PRUNED, DurationOrigin.QUEUED)
        kept = connection.execute(
            select(func.count()).select_from(duration_rollups).where(duration_rollups.c.grain != "pruned")
        ).scalar_one()
    exact = summarize(sorted(durations))
    assert (started.count, started.mean, started.max) == (25, exact.mean, exact.max)
    assert exact.p95 <= started.p95 <= exact.p95 * 1.19
    assert queued.count == 25 and queued.max == exact.max + timedelta(seconds=1)
    assert kept == 0  # the kept jobs' roll-ups went with the jobs
    assert jids(engine) == set()


def test_a_report_dated_long_ago_but_just_received_is_kept_until_it_was_received_long_enough_ago(engine):
    old = NOW - 31 * DAY_MICROS
    # A client's clock (or a resend) dates the completion 31 days back; it arrived just now.
    store(engine, "late", ("queued", old), ("complete", old + SECOND), recorded=NOW - SECOND)
    store(engine, "old-done", ("queued", old), ("complete", old + SECOND))

    first = pruner(engine).prune()

    assert first.jobs == 1
    assert jids(engine) == {"late"}
    later = Pruner(engine, retention_days=30, history_retention_days=0, clock=lambda: NOW + 31 * DAY_MICROS)
    assert later.prune().jobs == 1
    assert jids(engine) == set()


def test_history_older_than_its_retention_is_trimmed_but_restart_tombstones_stay(engine):
    old_recorded = NOW - 10 * DAY_MICROS
    stuck = (("queued", old_recorded), ("started", old_recorded + SECOND))
    store(engine, "stuck", *stuck, recorded=old_recorded)
    store(engine, "fresh", ("queued", NOW - SECOND))
    store(engine, "gone", ("restarted", old_recorded), recorded=old_recorded)

    report = pruner(engine, days=0, history_days=7).prune()

    assert report == type(report)(jobs=0, events=2)
    assert events_of(engine, "stuck") == []
    assert events_of(engine, "fresh") == ["queued"]
    assert events_of(engine, "gone") == ["restarted"]
    assert "stuck" in jids(engine), "the job itself stays: only its old history goes"


def test_a_retention_of_zero_days_keeps_everything(engine):
    old = NOW - 400 * DAY_MICROS
    store(engine, "ancient", ("queued", old), ("complete", old + SECOND), recorded=old)

    keeper = pruner(engine, days=0, history_days=0)

    assert keeper.enabled is False
    assert keeper.prune().jobs == 0
    assert jids(engine) == {"ancient"}


@pytest.mark.parametrize("ledger_url", ["sqlite"], indirect=True)
def test_the_app_prunes_in_the_background_and_stops_cleanly(settings: Settings, engine):
    old = 1_000_000_000 * SECOND  # 2001: far beyond any retention
    store(engine, "old-done", ("queued", old), ("complete", old + SECOND))
    quick = settings.model_copy(update={"prune_interval_seconds": 0.05})

    with TestClient(create_app(quick)):
        for _ in range(100):
            if not jids(engine):
                break
            asyncio.run(asyncio.sleep(0.05))

    assert jids(engine) == set()


def test_the_pruned_jobs_durations_are_read_back_in_the_api_and_on_the_durations_page(engine, settings):
    base = NOW - 40 * DAY_MICROS
    for n in range(10):
        start = base + n * 60 * SECOND
        store(
            engine,
            f"old-{n}",
            ("queued", start - SECOND),
            ("started", start),
            ("complete", start + 2 * SECOND),
        )
    store(engine, "kept", ("queued", NOW - SECOND), ("started", NOW), ("complete", NOW + 4 * SECOND))
    assert pruner(engine).prune().jobs == 10

    with TestClient(create_app(settings)) as client:
        body = client.get("/api/v1/durations", params={"from": "started"}).json()
        by_class = client.get("/api/v1/durations", params={"from": "queued", "job_class": "Mailer"}).json()
        other = client.get("/api/v1/durations", params={"job_class": "Nothing"}).json()
        filtered = client.get("/api/v1/durations", params={"q": "1"}).json()
        page = client.get("/durations").text

    assert body["summary"]["count"] == 1  # the kept job, exactly as before
    pruned = body["pruned_summary"]
    assert (pruned["count"], pruned["mean_seconds"], pruned["max_seconds"]) == (10, 2.0, 2.0)
    assert 2.0 <= pruned["p95_seconds"] <= 2.0 * 1.19 and pruned["percentiles_estimated"] is True
    assert (by_class["pruned_summary"]["count"], by_class["pruned_summary"]["max_seconds"]) == (10, 3.0)
    assert other["pruned_summary"]["count"] == 0
    assert filtered["pruned_summary"] is None  # roll-ups keep no arguments to filter on
    assert 'data-pruned="started">10 jobs · mean 2 s' in page
