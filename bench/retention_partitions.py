"""Retention on PostgreSQL with ``job_events`` as one table (row DELETEs) and partitioned by day
(whole days dropped), on the same ledger of 10M+ events spread over weeks.

    python bench/retention_partitions.py [--events 10000000] [--days 35] [--history-days 28]
                                         [--ingest-seconds 0] [--admin-url URL] [--keep]

Loads ``--events`` events (queued, started, complete per job, evenly spread over the last
``--days`` days, ids in recording order) into a database at revision 0007 with generate_series,
indexes built after the load. Copies it (CREATE DATABASE ... TEMPLATE) and migrates the copy to
head, timing migration 0008; the original is stamped at head without running 0008, so the same
code serves it with partitioning off. With ``--ingest-seconds`` it runs
``bench/ingest_batched.py`` against both (a real ``serve``). Then it times one retention pass of
history (``SUPERVISOR_HISTORY_RETENTION_DAYS`` = ``--history-days``, completed jobs kept) on
each, and prints what it deleted and the table's size before and after.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from alembic import command

from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.services.retention import DAY_MICROS, Pruner
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import alembic_config, upgrade

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


def retention(url: str, history_days: float) -> None:
    engine = make_engine(url)
    before = size(url)
    began = time.perf_counter()
    report = Pruner(engine, retention_days=0, history_retention_days=history_days).prune()
    took = time.perf_counter() - began
    after = size(url)
    engine.dispose()
    print(f"  retention pass      {took:,.1f} s, {report.events:,} events deleted")
    print(f"  job_events          {before[0]:,} events, {before[1]} -> {after[0]:,} events, {after[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=float, default=35)
    parser.add_argument("--history-days", type=float, default=28)
    parser.add_argument("--ingest-seconds", type=int, default=0)
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
        command.stamp(alembic_config(engine), "head")  # the same code, partitioning off
        engine.dispose()

        for label, url in (("one table (row DELETE)", rows_url), ("partitioned by day", parts_url)):
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
