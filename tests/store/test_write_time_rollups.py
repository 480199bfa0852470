"""The summaries the writer keeps as it stores reports, on both databases: duration roll-ups
(``store.rollups``, per class and queue) and events per minute (``store.event_counts``), checked
against the same figures counted afresh from the jobs and their history."""

from __future__ import annotations

import random
import threading
from collections import Counter
from datetime import timedelta

import orjson
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, select, text

from sidekiq_supervisor.domain import rollups
from sidekiq_supervisor.domain.durations import DurationOrigin, DurationSummary
from sidekiq_supervisor.domain.model import EventKind, Report, Timeline
from sidekiq_supervisor.domain.rollups import UNKNOWN_QUEUE, Grain, Tally
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.event_counts import MINUTE, events_per_minute
from sidekiq_supervisor.store.migrate import alembic_config, current_revision, upgrade
from sidekiq_supervisor.store.queries import JobFilter, count_jobs, duration_summary
from sidekiq_supervisor.store.retention import prune_completed_batch
from sidekiq_supervisor.store.rollup_counts import per_class
from sidekiq_supervisor.store.rollups import class_tallies, kept_count, rollup_summary
from sidekiq_supervisor.store.schema import duration_rollups, job_events, jobs, metadata
from sidekiq_supervisor.store.writer import write_reports
from sidekiq_supervisor.web.app import create_app
from tests.conftest import redis_test_url
from tests.store.job_count_checks import kept_counts

T0 = 1_790_000_000_000_000  # epoch microseconds, on a Saturday
SECOND = 1_000_000
HOUR = 3600 * SECOND
CLASSES = ("Mailer", "Billing", "Exporter")
# Each class's own queue; one job in ten runs on "low" instead (a class on two queues).
QUEUES = {"Mailer": "mailers", "Billing": "critical", "Exporter": "default"}
OTHER_QUEUE = "low"


def write(engine: Engine, reports: list[Report], recorded_at: int = T0) -> None:
    with write_transaction(engine) as connection:
        write_reports(connection, reports, recorded_at)


def shuffled_reports(seed: int, jobs_count: int) -> list[Report]:
    """Reports of jobs over three days, in no order, some sent twice, some late: a queued report
    after the completion, a second run after the first completed (the job is uncompleted again,
    then completes later), a start with no completion yet."""
    rng = random.Random(seed)
    reports = []
    for n in range(jobs_count):
        jid, job_class = f"j{n}", rng.choice(CLASSES)
        queue = OTHER_QUEUE if n % 10 == 3 else QUEUES[job_class]
        queued = T0 + rng.randrange(72 * HOUR)
        started = queued + rng.randrange(1, 30 * SECOND)
        completed = started + int(rng.lognormvariate(12, 2))

        def make(
            kind: str, at: int, jid: str = jid, job_class: str = job_class, queue: str = queue
        ) -> Report:
            return Report(jid, EventKind(kind), at, job_class, queue, "[]")

        shape = rng.random()
        reports += [make("queued", queued), make("started", started)]
        if shape < 0.1:
            continue  # still running
        reports.append(make("complete", completed))
        if shape < 0.2:
            reports.append(make("queued", queued - rng.randrange(1, HOUR)))  # an earlier queued, late
        elif shape < 0.3:
            rerun = completed + rng.randrange(1, 10 * SECOND)
            reports += [make("started", rerun), make("complete", rerun + rng.randrange(1, HOUR))]
        elif shape < 0.35:
            reports.append(make("started", completed + SECOND))  # a second run, still running
        if rng.random() < 0.2:
            reports.append(reports[-1])  # resent
    rng.shuffle(reports)
    return reports


def write_in_batches(engine: Engine, reports: list[Report], seed: int) -> None:
    rng = random.Random(seed)
    position = 0
    while position < len(reports):
        size = rng.randrange(1, 200)
        write(engine, reports[position : position + size])
        position += size


def counted_afresh(engine: Engine) -> dict[rollups.RollupKey, Tally]:
    """What the roll-ups must hold: every kept job's contributions, counted from its row."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(jobs.c.job_class, jobs.c.queue, jobs.c.queued_at, jobs.c.started_at, jobs.c.completed_at)
        ).all()
    return rollups.changes(
        (r.job_class, r.queue, None, Timeline(r.queued_at, r.started_at, r.completed_at)) for r in rows
    )


def stored_rollups(
    engine: Engine, grains: tuple[Grain, ...] = rollups.KEPT_GRAINS
) -> dict[rollups.RollupKey, Tally]:
    """Every roll-up row of ``grains``, as stored."""
    found = {}
    with engine.connect() as connection:
        query = select(duration_rollups).where(
            duration_rollups.c.grain.in_([grain.value for grain in grains])
        )
        for row in connection.execute(query):
            key = rollups.RollupKey(
                Grain(row.grain), row.start, row.job_class, row.queue, DurationOrigin(row.origin)
            )
            histogram = {int(b): n for b, n in orjson.loads(row.histogram).items()}
            found[key] = Tally(row._mapping["count"], row.total_micros, row.max_micros, histogram)
    return found


def assert_rollups_match(engine: Engine) -> None:
    expected, stored = counted_afresh(engine), stored_rollups(engine)
    assert set(stored) == {key for key, tally in expected.items() if tally.count}
    for key, tally in expected.items():
        got = stored[key]
        assert (got.count, got.total, got.histogram) == (tally.count, tally.total, tally.histogram), key
        # A maximum only grows: a job that moved out leaves it; never below the kept jobs' longest.
        assert got.longest >= tally.longest


def test_the_roll_ups_equal_a_count_afresh_of_the_kept_jobs_however_the_reports_arrive(engine):
    reports = shuffled_reports(seed=7, jobs_count=600)
    write_in_batches(engine, reports, seed=8)

    assert_rollups_match(engine)
    # Some jobs moved after they completed: the fixture covers what it means to.
    moved = [r for r in reports if r.kind is EventKind.STARTED]
    assert len(moved) > 600


def test_retention_moves_deleted_jobs_from_the_kept_roll_ups_to_the_pruned_ones(engine):
    write_in_batches(engine, shuffled_reports(seed=11, jobs_count=400), seed=12)
    with engine.connect() as connection:
        before = class_tallies(connection, Grain.ALL)

    cutoff = T0 + 36 * HOUR
    with write_transaction(engine) as connection:
        batch = prune_completed_batch(connection, cutoff, 0, 10_000)
    assert batch.deleted > 50

    assert_rollups_match(engine)
    with engine.connect() as connection:
        after = class_tallies(connection, Grain.ALL)
        for (job_class, origin), tally in before.items():
            pruned = rollup_summary(connection, Grain.PRUNED, origin, job_class)
            kept = after.get((job_class, origin), Tally())
            assert kept.count + pruned.count == tally.count
        # Whole days before the cutoff are gone from the kept day roll-ups.
        days = {
            start
            for (start,) in connection.execute(
                select(duration_rollups.c.start).where(duration_rollups.c.grain == "day")
            )
        }
        assert min(days) >= (cutoff // (24 * HOUR)) * 24 * HOUR


def test_the_events_per_minute_equal_a_count_of_the_history(engine):
    write_in_batches(engine, shuffled_reports(seed=3, jobs_count=300), seed=4)

    assert counted_events(engine) == history_per_minute(engine)


def history_per_minute(engine: Engine) -> dict[tuple[str, int], int]:
    with engine.connect() as connection:
        events = connection.execute(select(job_events.c.kind, job_events.c.at))
        return dict(Counter((kind, at // MINUTE * MINUTE) for kind, at in events))


def counted_events(engine: Engine) -> dict[tuple[str, int], int]:
    with engine.connect() as connection:
        counted = events_per_minute(connection, T0 - 2 * HOUR, T0 + 100 * HOUR)
    return {(kind, minute): n for kind, minutes in counted.items() for minute, n in minutes.items()}


def completions(prefix: str, count: int) -> list[Report]:
    reports = []
    for n in range(count):
        jid = f"{prefix}-{n}"
        reports += [
            Report(jid, EventKind.STARTED, T0 + n, "Mailer", "default", "[]"),
            Report(jid, EventKind.COMPLETE, T0 + SECOND + n, "Mailer", "default", "[]"),
        ]
    return reports


def test_a_writer_waits_for_another_writers_roll_ups_and_counts_and_adds_to_them(engine):
    """Two writer processes (PostgreSQL) counting the same hour: the second reads the roll-up
    rows only once the first committed, so it adds to them instead of overwriting them, and both
    add to the same count of jobs per status (on SQLite the second waits for the write lock)."""
    write(engine, completions("first", 1))  # the hour's rows exist: no insert to wait on
    errors: list[Exception] = []

    def second_writer() -> None:
        try:
            write(engine, completions("b", 7))
        except Exception as exc:  # reported below, in the test's thread
            errors.append(exc)

    with write_transaction(engine) as connection:
        write_reports(connection, completions("a", 5), T0)
        other = threading.Thread(target=second_writer)
        other.start()
        # Give the second writer time to reach the rows this transaction holds.
        other.join(timeout=0.5)
    other.join()

    assert errors == []
    with engine.connect() as connection:
        tallies = class_tallies(connection, Grain.HOUR)
    assert tallies["Mailer", DurationOrigin.STARTED].count == 13
    assert tallies["Mailer", DurationOrigin.STARTED].total == 13 * SECOND
    assert_rollups_match(engine)
    assert kept_counts(engine) == {("Mailer", "default", "complete"): 13}


def test_the_upgrade_counts_the_jobs_and_events_already_stored_and_keeps_the_pruned_ones(engine):
    write_in_batches(engine, shuffled_reports(seed=5, jobs_count=300), seed=6)
    with write_transaction(engine) as connection:
        assert prune_completed_batch(connection, T0 + 24 * HOUR, 0, 10_000).deleted > 20
    expected = stored_rollups(engine)
    expected_pruned = stored_rollups(engine, (Grain.PRUNED,))

    # Down to the ledger of the previous release: the pruned jobs in its hourly roll-ups.
    command.downgrade(alembic_config(engine), "0008")
    assert current_revision(engine) == "0008"
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM jobs")).scalar_one() > 0
        assert connection.execute(text("SELECT sum(count) FROM job_rollups")).scalar_one() == sum(
            tally.count for tally in expected_pruned.values()
        )
    upgrade(engine)

    # Down at 0008 the pruned jobs were per class: back up, they are under the unknown queue.
    assert stored_rollups(engine, (Grain.PRUNED,)) == per_class(expected_pruned.items())
    with engine.connect() as connection:
        # What the migration made is what the schema module says.
        context = MigrationContext.configure(connection, opts={"include_object": rollup_tables})
        assert compare_metadata(context, metadata) == []

    upgraded = stored_rollups(engine)
    assert set(upgraded) == set(expected)
    for key, tally in expected.items():
        # The upgrade counts each job as it is now; the writer's maximum may remember a job's
        # earlier timeline.
        got = upgraded[key]
        assert (got.count, got.total, got.histogram) == (tally.count, tally.total, tally.histogram)
        assert got.longest <= tally.longest
    # The events are counted from the history as it stands (retention took the pruned jobs' away).
    assert counted_events(engine) == history_per_minute(engine)


def assert_read_from_rollups(rolled: DurationSummary, exact: DurationSummary) -> None:
    """A summary from the roll-ups against the exact one of the same jobs: the same count and
    mean, each percentile at most 19% above the exact one, a maximum never below it."""
    assert rolled.percentiles_estimated is True and exact.percentiles_estimated is False
    assert rolled.count == exact.count
    if not exact.count:
        return
    assert rolled.mean is not None and exact.mean is not None
    assert abs(rolled.mean - exact.mean) <= timedelta(microseconds=1)
    assert rolled.max is not None and exact.max is not None and rolled.max >= exact.max
    for name in ("p50", "p95", "p99"):
        low, high = getattr(exact, name), getattr(rolled, name)
        assert low <= high <= low * 1.19 + timedelta(microseconds=1), name


def queue_filters() -> list[dict[str, str]]:
    """Every queue alone, and every class on each queue it ran on (and on one it never ran on)."""
    on_queues = [{"queue": queue} for queue in (*QUEUES.values(), OTHER_QUEUE, "nowhere")]
    both = [
        {"job_class": job_class, "queue": queue}
        for job_class in CLASSES
        for queue in (QUEUES[job_class], OTHER_QUEUE, QUEUES[CLASSES[0]])
    ]
    return on_queues + both


def test_per_queue_roll_ups_equal_an_exact_summary_of_the_kept_jobs_of_each_queue(engine):
    write_in_batches(engine, shuffled_reports(seed=21, jobs_count=600), seed=22)
    with write_transaction(engine) as connection:
        assert prune_completed_batch(connection, T0 + 30 * HOUR, 0, 10_000).deleted > 50

    assert_rollups_match(engine)
    with engine.connect() as connection:
        for filters in [{}, *({"job_class": c} for c in CLASSES), *queue_filters()]:
            for origin in DurationOrigin:
                rolled = rollup_summary(connection, Grain.ALL, origin, **filters)
                exact = duration_summary(connection, origin, JobFilter(**filters))
                assert_read_from_rollups(rolled, exact)
                assert kept_count(connection, origin, **filters) == exact.count, (filters, origin)
                counted = count_jobs(connection, JobFilter(duration_from=origin, **filters))
                assert counted == exact.count, (filters, origin)
        # The low queue holds jobs of every class; a class's own queue holds its jobs alone.
        low = class_tallies(connection, Grain.ALL, queue=OTHER_QUEUE)
        assert {job_class for job_class, _ in low} == set(CLASSES)
        assert {job_class for job_class, _ in class_tallies(connection, Grain.ALL, queue="mailers")} == {
            "Mailer"
        }


def test_a_queue_filtered_summary_and_count_through_the_job_manager_and_the_api_are_the_exact_ones(
    engine, ledger_url
):
    write_in_batches(engine, shuffled_reports(seed=31, jobs_count=300), seed=32)
    manager = JobManager(engine)
    # Retention off: the jobs are dated in 2026's autumn, and pruning them is not the subject.
    settings = Settings(database_url=ledger_url, redis_url=redis_test_url(), retention_days=0)
    with TestClient(create_app(settings)) as client:
        for filters in [{"queue": "critical"}, {"queue": OTHER_QUEUE, "job_class": "Billing"}]:
            for origin, question in (
                (DurationOrigin.QUEUED, manager.queued_to_completion_duration),
                (DurationOrigin.STARTED, manager.completed_jobs_duration),
            ):
                answer = question(**filters)
                exact = answer.summary(exact=True)
                assert exact.count > 3
                assert_read_from_rollups(answer.summary(), exact)
                assert len(answer) == answer.estimated_count().value == exact.count
                with engine.connect() as connection:
                    assert count_jobs(connection, answer.filter) == exact.count

                params = {"from": origin.value, "limit": "1", **filters}
                body = client.get("/api/v1/durations", params=params).json()
                exact_body = client.get("/api/v1/durations", params={**params, "exact": "true"}).json()
                rolled, exactly = body["summary"], exact_body["summary"]
                assert rolled["percentiles_estimated"] is True and exactly["count"] == exact.count
                assert rolled["count"] == exactly["count"]
                assert rolled["mean_seconds"] == pytest.approx(exactly["mean_seconds"], abs=1e-6)
                # Jobs pruned before 0012 kept no queue: none are summarised for a queue.
                assert body["pruned_summary"] is None
        # An arguments filter is still summarised exactly, from the jobs.
        needled = manager.completed_jobs_duration("[]", queue="critical").summary()
        assert needled.percentiles_estimated is False


def test_the_upgrade_from_0011_counts_per_queue_and_keeps_every_figure_and_the_downgrade_too(engine):
    write_in_batches(engine, shuffled_reports(seed=41, jobs_count=300), seed=42)
    with write_transaction(engine) as connection:
        assert prune_completed_batch(connection, T0 + 24 * HOUR, 0, 10_000).deleted > 20
    kept, pruned = stored_rollups(engine), stored_rollups(engine, (Grain.PRUNED,))
    assert {key.queue for key in pruned} >= {OTHER_QUEUE, "mailers"}
    with engine.connect() as connection:
        summaries = figures_per_class(connection)

    # Down to 0011: one row per class, each the sum of its queues' rows.
    command.downgrade(alembic_config(engine), "0011")
    assert current_revision(engine) == "0011"
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM duration_rollups")).mappings().all()
    assert "queue" not in rows[0]
    folded = {
        (row["grain"], row["start"], row["job_class"], row["origin"]): (
            row["count"],
            row["total_micros"],
            row["max_micros"],
            {int(b): n for b, n in orjson.loads(row["histogram"]).items()},
        )
        for row in rows
    }
    expected = per_class([*kept.items(), *pruned.items()])
    assert folded == {
        (key.grain.value, key.start, key.job_class, key.origin.value): (
            t.count,
            t.total,
            t.longest,
            t.histogram,
        )
        for key, t in expected.items()
    }
    assert all(
        row["key"] == f"{row['grain']}|{row['start']}|{row['origin']}|{row['job_class']}" for row in rows
    )

    upgrade(engine)

    # The kept jobs' roll-ups are counted again per class and queue: every figure as the writer
    # kept it (a maximum may be lower: the writer's remembers a job's earlier timeline).
    upgraded = stored_rollups(engine)
    assert set(upgraded) == set(kept)
    for key, tally in kept.items():
        got = upgraded[key]
        assert (got.count, got.total, got.histogram) == (tally.count, tally.total, tally.histogram), key
        assert got.longest <= tally.longest
    assert_rollups_match(engine)
    # The pruned jobs' rows lost their queue on the way down: one per class and origin, under the
    # unknown queue, whose sums are the same.
    assert stored_rollups(engine, (Grain.PRUNED,)) == per_class(pruned.items())
    with engine.connect() as connection:
        after = figures_per_class(connection)
        context = MigrationContext.configure(connection, opts={"include_object": rollup_tables})
        assert compare_metadata(context, metadata) == []
        # Not one pruned job is summarised among the kept jobs of a queue or of the unknown queue.
        assert rollup_summary(connection, Grain.ALL, DurationOrigin.QUEUED, queue=UNKNOWN_QUEUE).count == 0
    assert after.keys() == summaries.keys()
    for name, summary in summaries.items():
        assert (after[name].count, after[name].mean) == (summary.count, summary.mean), name


def figures_per_class(connection: Connection) -> dict[tuple[str, str | None, str], DurationSummary]:
    """The kept and pruned summaries of every class and of all, from each origin."""
    return {
        (grain.value, job_class, origin.value): rollup_summary(connection, grain, origin, job_class)
        for grain in (Grain.ALL, Grain.PRUNED)
        for job_class in (None, *CLASSES)
        for origin in DurationOrigin
    }


def rollup_tables(item, name, kind, reflected, compare_to) -> bool:
    """The objects of the roll-ups' migrations, for a comparison with ``store.schema``."""
    table = name if kind == "table" else item.table.name
    return table in {"duration_rollups", "event_counts"} or name == "ix_jobs_started_at_uncompleted"


def test_a_class_and_a_queue_of_the_longest_names_fit_the_key_and_a_separator_in_them_splits_nothing(engine):
    longest = "C" * 254 + "|"
    reports = []
    for n, (job_class, queue) in enumerate([(longest, "|" + "Q" * 254), ("C|x", "q"), ("C", "x|q")]):
        reports += [
            Report(f"long-{n}", EventKind.STARTED, T0, job_class, queue, "[]"),
            Report(f"long-{n}", EventKind.COMPLETE, T0 + (n + 1) * SECOND, job_class, queue, "[]"),
        ]
    write(engine, reports)

    assert_rollups_match(engine)
    with engine.connect() as connection:
        for job_class, queue, seconds in ((longest, "|" + "Q" * 254, 1), ("C|x", "q", 2), ("C", "x|q", 3)):
            summary = rollup_summary(connection, Grain.ALL, DurationOrigin.STARTED, job_class, queue)
            assert (summary.count, summary.max) == (1, timedelta(seconds=seconds))
