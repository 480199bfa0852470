"""Migration 0008 and the daily partitions of ``job_events`` on the real PostgreSQL (SQLite keeps
one table): the upgrade keeps every row, odd report times are stored, dedup holds across
partitions, maintenance is idempotent, retention drops whole old days and keeps what it must."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.services.retention import Pruner
from sidekiq_supervisor.store.engine import make_engine, write_transaction
from sidekiq_supervisor.store.migrate import alembic_config, current_revision, head_revision, upgrade
from sidekiq_supervisor.store.partitions import (
    DAY_MICROS,
    DEFAULT_PARTITION,
    day_name,
    ensure_partitions,
    is_partitioned,
    range_partitions,
)
from sidekiq_supervisor.store.queries import job_history
from sidekiq_supervisor.store.writer import write_reports
from tests.conftest import postgres_database

SECOND = 1_000_000
T0 = 1_800_000_000_000_000  # 2027-01-15 08:00 UTC
EPOCH_1970 = 5 * SECOND
YEAR_2400 = 13_569_465_600 * SECOND
ROWS = "SELECT id, jid, kind, at, recorded_at, detail FROM job_events ORDER BY id"


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def fresh_engine() -> Iterator[Engine]:
    """An engine on a PostgreSQL database of this test alone, with no schema yet."""
    with postgres_database(migrate=False) as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


def store(engine: Engine, jid: str, kind: str, at: int, recorded: int) -> None:
    with write_transaction(engine) as connection:
        write_reports(connection, [Report(jid, EventKind(kind), at, "Mailer", "default", "[1]")], recorded)


def store_at_0007(engine: Engine, jid: str, kind: str, at: int, recorded: int) -> None:
    """A report's history row as a ledger of revision 0007 holds it (today's writer needs later tables)."""
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO job_events (jid, kind, at, recorded_at) VALUES (:jid, :kind, :at, :recorded)"),
            {"jid": jid, "kind": kind, "at": at, "recorded": recorded},
        )


def rows(engine: Engine) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(ROWS))]


def home_of(engine: Engine, jid: str) -> list[str]:
    """The partitions holding ``jid``'s events."""
    query = text("SELECT DISTINCT tableoid::regclass::text FROM job_events WHERE jid = :jid")
    with engine.connect() as connection:
        return sorted(connection.execute(query, {"jid": jid}).scalars())


def history(engine: Engine, jid: str) -> list[tuple[str, int]]:
    with engine.connect() as connection:
        return [(event.kind.value, event.at) for event in job_history(connection, jid)]


def test_an_upgrade_from_0007_keeps_every_row_and_id_and_the_downgrade_too(fresh_engine):
    engine = fresh_engine
    upgrade(engine, "0007")
    now = time.time_ns() // 1000  # the migration lays out its days around the real date
    odd = {
        "recent": now - SECOND,
        "month-old": now - 30 * DAY_MICROS,
        "y1970": EPOCH_1970,
        "y2400": YEAR_2400,
    }
    for jid, at in odd.items():
        store_at_0007(engine, jid, "queued", at, now)
        store_at_0007(engine, jid, "started", at + SECOND, now)
    store_at_0007(engine, "gone", "restarted", now - 40 * DAY_MICROS, now)
    before = rows(engine)

    upgrade(engine)

    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert is_partitioned(connection)
    assert rows(engine) == before
    assert history(engine, "y1970") == [("queued", EPOCH_1970), ("started", EPOCH_1970 + SECOND)]
    # Older than the daily partitions: one partition below them; 2400: the DEFAULT one.
    assert home_of(engine, "y1970")[0].startswith("job_events_before_")
    assert home_of(engine, "y2400") == [DEFAULT_PARTITION]
    assert home_of(engine, "month-old")[0].startswith("job_events_p")
    assert home_of(engine, "gone") == ["job_events_restarted"]  # tombstones: one small table
    # Resent reports change nothing; a new one takes the next id of the same sequence.
    for jid, at in odd.items():
        store(engine, jid, "queued", at, now + SECOND)
    store(engine, "new", "queued", now, now)
    after = rows(engine)
    assert after[:-1] == before and after[-1][0] > before[-1][0] and after[-1][1] == "new"

    command.downgrade(alembic_config(engine), "0007")

    with engine.connect() as connection:
        assert not is_partitioned(connection)
    assert rows(engine) == after
    store_at_0007(engine, "after-downgrade", "queued", now, now)
    assert rows(engine)[-1][0] == after[-1][0] + 1
    upgrade(engine)
    assert len(rows(engine)) == len(after) + 1


def test_reports_at_odd_times_are_stored_read_back_and_deduplicated_across_partitions(fresh_engine):
    engine = fresh_engine
    upgrade(engine)
    now = T0
    times = {"y1970": EPOCH_1970, "y2400": YEAR_2400, "now": now, "before-1970": -3 * DAY_MICROS}
    for _ in range(2):  # the second time, every report is a resend
        for jid, at in times.items():
            store(engine, jid, "queued", at, now)
    assert len(rows(engine)) == len(times)
    for jid, at in times.items():
        assert history(engine, jid) == [("queued", at)]

    # A day created once its strays sit in the DEFAULT partition takes them; dedup still holds.
    assert home_of(engine, "y2400") == [DEFAULT_PARTITION]
    created = ensure_partitions(engine, YEAR_2400, ahead_days=0)
    assert created == [day_name(YEAR_2400 // DAY_MICROS * DAY_MICROS)]
    assert home_of(engine, "y2400") == created
    store(engine, "y2400", "queued", YEAR_2400, now + SECOND)
    store(engine, "y2400", "started", YEAR_2400 + SECOND, now + SECOND)
    assert history(engine, "y2400") == [("queued", YEAR_2400), ("started", YEAR_2400 + SECOND)]
    assert len(rows(engine)) == len(times) + 1


def test_partition_maintenance_creates_the_missing_days_once(fresh_engine):
    engine = fresh_engine
    upgrade(engine)
    day = T0 // DAY_MICROS * DAY_MICROS

    created = ensure_partitions(engine, T0 + 5 * SECOND, ahead_days=3)

    assert created == [day_name(day + n * DAY_MICROS) for n in range(4)]
    assert ensure_partitions(engine, T0, ahead_days=3) == []
    assert ensure_partitions(engine, T0 + DAY_MICROS, ahead_days=3) == [day_name(day + 4 * DAY_MICROS)]
    with engine.connect() as connection:
        names = [partition.name for partition in range_partitions(connection)]
    assert len(names) == len(set(names)) and set(created) <= set(names)
    upgrade(engine)  # at head already: still nothing to do, nothing breaks
    assert rows(engine) == []


def test_retention_drops_whole_old_days_and_keeps_tombstones_late_reports_and_newer_days(fresh_engine):
    engine = fresh_engine
    upgrade(engine)
    ensure_partitions(engine, T0 - 20 * DAY_MICROS, ahead_days=25)
    old = T0 - 10 * DAY_MICROS
    cutoff = T0 - 7 * DAY_MICROS
    # Stored in the order they are received, as ids follow it.
    store(engine, "old", "queued", old, old)
    store(engine, "old", "started", old + SECOND, old)
    store(engine, "gone", "restarted", old, old)  # a restart tombstone stays
    store(engine, "stray", "queued", EPOCH_1970, old)  # DEFAULT partition: trimmed row by row
    store(engine, "straddling", "queued", cutoff - 3600 * SECOND, cutoff - 3600 * SECOND)
    store(engine, "fresh", "queued", T0 - SECOND, T0 - SECOND)
    store(engine, "late", "queued", old, T0 - SECOND)  # dated long ago, received just now
    ids = {row[1]: row[0] for row in rows(engine)}
    pruner = Pruner(engine, retention_days=0, history_retention_days=7, clock=lambda: T0)

    report = pruner.prune()

    assert report.events == 3  # old's two and the stray
    assert {row[1] for row in rows(engine)} == {"gone", "late", "straddling", "fresh"}
    assert all(ids[row[1]] == row[0] for row in rows(engine))
    assert history(engine, "gone") == [("restarted", old)] and history(engine, "late") == [("queued", old)]
    assert home_of(engine, "late") == [DEFAULT_PARTITION]
    with engine.connect() as connection:
        lowers = [p.lower for p in range_partitions(connection) if p.lower is not None]
    assert min(lowers) == cutoff // DAY_MICROS * DAY_MICROS, "every day wholly before the cutoff went"
    assert pruner.prune().events == 0  # nothing more to do

    # A day later the straddling day is wholly old too; the tombstone and the late report stay.
    assert (
        Pruner(engine, retention_days=0, history_retention_days=7, clock=lambda: T0 + DAY_MICROS)
        .prune()
        .events
        == 1
    )
    assert {row[1] for row in rows(engine)} == {"gone", "late", "fresh"}


def test_the_api_takes_reports_at_odd_times_and_never_answers_5xx(client: TestClient):
    fields = {"arguments": "[1]", "job_class": "Mailer"}
    # Without "at" the receive time is the event time and a resend is a new event: "now" is sent.
    times = {"y1970": "0", "y2400": "13569465600", "now": f"{time.time():.6f}"}
    for _ in range(2):  # the second time, every report is a resend
        for jid, at in times.items():
            response = client.post(f"/api/v1/jobs/{jid}/started", data={**fields, "at": at})
            assert response.status_code in (200, 201), response.text
    for jid in times:
        history = client.get(f"/api/v1/jobs/{jid}/history").json()["history"]
        assert [event["event"] for event in history] == ["started"], history
    # A time no epoch-seconds clock gives (milliseconds, most likely) is refused, not a 5xx.
    assert client.post("/api/v1/jobs/absurd/started", data={**fields, "at": "1e15"}).status_code == 422


def test_a_day_held_by_a_long_read_is_dropped_by_a_later_pass_and_nothing_fails(fresh_engine):
    engine = fresh_engine
    upgrade(engine)
    ensure_partitions(engine, T0 - 20 * DAY_MICROS, ahead_days=25)
    old = T0 - 10 * DAY_MICROS
    store(engine, "old", "queued", old, old)
    store(engine, "fresh", "queued", T0 - SECOND, T0 - SECOND)
    pruner = Pruner(engine, retention_days=0, history_retention_days=7, clock=lambda: T0)

    with engine.connect() as reader:
        reader.execute(text("SELECT count(*) FROM job_events"))  # holds its lock until the end
        held = pruner.prune()
        reader.rollback()

    assert held.events == 0 and {row[1] for row in rows(engine)} == {"old", "fresh"}
    assert pruner.prune().events == 1
    assert {row[1] for row in rows(engine)} == {"fresh"}
