"""Retention on PostgreSQL with ``job_events`` as one table (row DELETEs) and partitioned by day
(whole days dropped), on the same ledger of 10M+ events spread over weeks.

    python bench/retention_partitions.py [--events 10000000] [--days 35] [--history-days 28]
                                         [--ingest-seconds 0] [--admin-url URL] [--keep]

Loads ``--events`` events (queued, started, complete per job, evenly spread over the last
``--days`` days, ids in recording order) into a database at revision 0007 with generate_series,
indexes built after the load. Copies it (CREATE DATABASE ... TEMPLATE) and migrates the copy to
head, timing migration 0008; the original is stamped at head without running 0008, so the same
code serves it with partitioning off. With ``--ingest-seconds`` it runs
``bench/ingest_batched.py`` against both (a real ``serve``). With ``--write-batches N`` it
writes N batches of 500 reports (queued, started, complete of 166 jobs, dated now) to each
through the writer's own ``write_reports``, alternating between the two databases batch by
batch so that other load on the machine falls on both alike, and prints the median and p90
time of a batch's transaction. Then it times one retention pass of history
(``SUPERVISOR_HISTORY_RETENTION_DAYS`` = ``--history-days``, completed jobs kept) on each, and
prints what it deleted and the table's size before and after.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from alembic import command

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.services.retention import DAY_MICROS, Pruner
from sidekiq_supervisor.store.engine import make_engine, write_transaction
from sidekiq_supervisor.store.migrate import alembic_config, upgrade
from sidekiq_supervisor.store.writer import write_reports

HERE = Path(__file__).resolve().parent
LOAD = """
INSERT INTO job_events (id, jid, kind, at, recorded_at, detail)
SELECT g + 1, 'bench-' || (g / 3), (ARRAY['queued', 'started', 'complete'])[g %% 3 + 1], t, t + 2000, NULL
FROM (SELECT g, %(start)s + g * %(step)s AS t FROM generate_series(0::bigint, %(count)s - 1) AS g) AS s
"""


def database_url(admin_url: str, name: str) -> str:
    return admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


def admin(admin_url: str, statement: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(statement)


def load(url: str, count: int, days: float, now: int) -> float:
    """Fill ``job_events`` (at 0007) with ``count`` events over the last ``days`` days; seconds."""
    began = time.perf_counter()
    span = int(days * DAY_MICROS)
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        connection.execute("SET synchronous_commit TO OFF")
        connection.execute("SET maintenance_work_mem TO '256MB'")
        connection.execute("ALTER TABLE job_events DROP CONSTRAINT pk_job_events")
        connection.execute("ALTER TABLE job_events DROP CONSTRAINT uq_job_events_jid_kind_at")
        connection.execute("DROP INDEX ix_job_events_kindid")
        connection.execute(LOAD, {"start": now - span, "step": span // count, "count": count})
        connection.execute("ALTER TABLE job_events ADD CONSTRAINT pk_job_events PRIMARY KEY (id)")
        connection.execute(
            "ALTER TABLE job_events ADD CONSTRAINT uq_job_events_jid_kind_at UNIQUE (jid, kind, at)"
        )
        connection.execute("CREATE INDEX ix_job_events_kindid ON job_events (kind, id)")
        connection.execute("SELECT setval('job_events_id_seq', %(count)s)", {"count": count})
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE job_events")
    return time.perf_counter() - began


def size(url: str) -> tuple[int, str]:
    """How many events, and the size of job_events with its partitions and indexes."""
    with psycopg.connect(url.replace("+psycopg", "")) as connection:
        count = connection.execute("SELECT count(*) FROM job_events").fetchone()
        total = connection.execute(
            "SELECT pg_size_pretty(coalesce((SELECT sum(pg_total_relation_size(relid))"
            " FROM pg_partition_tree('job_events'::regclass)), pg_total_relation_size('job_events')))"
        ).fetchone()
    assert count is not None and total is not None
    return int(count[0]), str(total[0])


def ingest(url: str, seconds: int) -> None:
    run = [sys.executable, str(HERE / "ingest_batched.py"), "--database-url", url, "--seconds", str(seconds)]
    subprocess.run(run, check=True)


def batch_of(number: int, now: int) -> list[Report]:
    """The reports of 166 whole jobs (498), as the gem batches them."""
    kinds = (EventKind.QUEUED, EventKind.STARTED, EventKind.COMPLETE)
    return [
        Report(f"write-{number}-{job}", kind, now + step * 1000, "Mailer", "default", "[1]")
        for job in range(166)
        for step, kind in enumerate(kinds)
    ]


def interleaved_writes(urls: dict[str, str], batches: int) -> None:
    """Write ``batches`` batches to each database in turn; per database, a batch's time."""
    engines = {label: make_engine(url) for label, url in urls.items()}
    took: dict[str, list[float]] = {label: [] for label in urls}
    for number in range(batches):
        for label, engine in engines.items():
            reports = batch_of(number, now_micros())
            began = time.perf_counter()
            with write_transaction(engine) as connection:
                write_reports(connection, reports, now_micros())
            took[label].append(time.perf_counter() - began)
    for label, times in took.items():
        median, p90 = statistics.median(times), statistics.quantiles(times, n=10)[-1]
        rate = len(batch_of(0, 0)) / median
        figures = f"median {median * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms ({rate:,.0f} events/s)"
        print(f"  {label:<22}a batch: {figures}")
    for engine in engines.values():
        engine.dispose()


def retention(url: str, history_days: float) -> None:
    engine = make_engine(url)
    before = size(url)
    began = time.perf_counter()
    report = Pruner(engine, retention_days=0, history_retention_days=history_days).prune()
    took = time.perf_counter() - began
    after = size(url)
    engine.dispose()
    print(f"  retention pass      {took:,.1f} s, {report.events:,} events deleted (row DELETE or drops)")
    print(f"  job_events          {before[0]:,} events, {before[1]} -> {after[0]:,} events, {after[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=float, default=35)
    parser.add_argument("--history-days", type=float, default=28)
    parser.add_argument("--ingest-seconds", type=int, default=0)
    parser.add_argument("--write-batches", type=int, default=0)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", action="store_true", help="keep the two databases")
    args = parser.parse_args()
    rows_db, parts_db = "bench_retention_rows", "bench_retention_partitions"
    rows_url, parts_url = database_url(args.admin_url, rows_db), database_url(args.admin_url, parts_db)
    for name in (rows_db, parts_db):
        admin(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    try:
        admin(args.admin_url, f'CREATE DATABASE "{rows_db}"')
        engine = make_engine(rows_url)
        upgrade(engine, "0007")
        engine.dispose()
        took = load(rows_url, args.events, args.days, now_micros())
        print(f"load                  {args.events:,} events over {args.days:g} days in {took:,.1f} s")
        admin(args.admin_url, f'CREATE DATABASE "{parts_db}" TEMPLATE "{rows_db}"')

        engine = make_engine(parts_url)
        began = time.perf_counter()
        upgrade(engine)
        print(f"migration 0008        {time.perf_counter() - began:,.1f} s (partitioned copy)")
        engine.dispose()
        engine = make_engine(rows_url)
        # The same code, partitioning off: 0008 skipped, the later revisions run.
        command.stamp(alembic_config(engine), "0008")
        upgrade(engine)
        engine.dispose()

        urls = {"one table": rows_url, "partitioned by day": parts_url}
        if args.write_batches:
            print(f"writes                {args.write_batches} batches of 498 reports each, alternating")
            interleaved_writes(urls, args.write_batches)
        for label, url in urls.items():
            print(label)
            if args.ingest_seconds:
                ingest(url, args.ingest_seconds)
            retention(url, args.history_days)
    finally:
        if not args.keep:
            for name in (rows_db, parts_db):
                admin(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
