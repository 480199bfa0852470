"""Fill a ledger with N realistic jobs, fast, through the bulk path (not HTTP).

    python bench/load_ledger.py --jobs 1000000 [--database-url URL] [--revision head] [--seed 7]

Without ``--database-url`` it writes ``/tmp/scale/ledger-<N>.db`` (SQLite). The schema is
migrated first (``store.migrate.upgrade``; ``--revision 0001`` loads a ledger as it was before
the search indexes, to measure before and after). Every job row comes with its ``job_events``
history, and the timelines agree with it:

- 21 job classes on 6 queues, of uneven sizes as in production: the classes' shares fall off as
  1/rank (the busiest holds 28% of the jobs, the twentieth 1.4%), and one class on a queue of its
  own (``RARE_CLASS`` on ``RARE_QUEUE``) holds 0.01%, so that a filter by class or queue can be
  common or rare; arguments are JSON arrays as Rails apps send them (ids, emails, nested hashes,
  ActiveJob wrappers);
- exactly 0.1% of the jobs (one in 1000) carry the marker ``MARKER`` in their arguments, in
  mixed case, so ``--filter qzx-marker-7731`` matches 0.1%;
- statuses: mostly complete (some after a failed first run), some queued and started, a few
  failed (started, then a ``failed`` report) and restarted (the original row deleted, its
  history ending in ``restarted``, the replacement queued with ``restarted_from``).

SQLite: executemany in transactions of 50,000 jobs, ``synchronous=OFF`` for the load.
PostgreSQL: COPY, with the secondary indexes dropped during the load and rebuilt after it from
their own definitions (building an index once is far cheaper than maintaining it row by row).
At a revision where ``job_events`` is partitioned by day (0008 on), the days the jobs span are
created first, so that the events land in them rather than in the DEFAULT partition.
Prints rows/s.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine
from sqlalchemy.engine import Connection

from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.job_counts import recount
from sidekiq_supervisor.store.migrate import upgrade
from sidekiq_supervisor.store.partitions import ensure_partitions

MARKER = "QZX-Marker-7731"
# The last revision before the writer kept summaries of its own.
COUNTED_BY_UPGRADE = "0008"
CHUNK = 50_000
JOB_COLUMNS = ("jid", "job_class", "queue", "arguments", "status", "queued_at", "started_at",
               "completed_at", "attempts", "restarted_from", "worker")  # fmt: skip
EVENT_COLUMNS = ("jid", "kind", "at", "recorded_at", "detail")
# (class, queue, median run seconds)
CLASSES = [
    ("UserMailer::DeliveryJob", "mailers", 0.4), ("OrderConfirmationJob", "mailers", 0.6),
    ("PasswordResetMailerJob", "mailers", 0.3), ("WeeklyDigestJob", "low", 12.0),
    ("ChargeCardJob", "critical", 1.5), ("RefundPaymentJob", "critical", 2.0),
    ("SyncInventoryJob", "default", 4.0), ("ImportCsvJob", "low", 45.0),
    ("ExportReportJob", "reports", 30.0), ("GenerateInvoicePdfJob", "reports", 3.0),
    ("WebhookDeliveryJob", "default", 0.8), ("SearchReindexJob", "low", 6.0),
    ("ImageResizeJob", "default", 1.2), ("SlackNotifierJob", "default", 0.2),
    ("ActiveStorage::AnalyzeJob", "default", 0.9), ("ActiveStorage::PurgeJob", "low", 0.3),
    ("AbandonedCartReminderJob", "mailers", 0.5), ("SubscriptionRenewalJob", "critical", 2.5),
    ("AuditLogArchiveJob", "low", 20.0), ("GeocodeAddressJob", "default", 0.7),
]  # fmt: skip
# A class and queue that hold one job in 10,000: the rare filter no other index narrows.
RARE_CLASS, RARE_QUEUE = "LegacyFaxDeliveryJob", "fax"
RARE_SHARE = 0.0001
CLASSES.append((RARE_CLASS, RARE_QUEUE, 5.0))
# Cumulative shares: 1/rank over the ordinary classes, scaled to leave RARE_SHARE to the last.
_ranks = [1 / rank for rank in range(1, len(CLASSES))]
CUMULATIVE_SHARES = [
    *(share * (1 - RARE_SHARE) / sum(_ranks) for share in itertools.accumulate(_ranks)),
    1.0,
]
NAMES = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
         "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "élodie"]  # fmt: skip
DOMAINS = ["example.com", "acme.io", "globex.net", "initech.org", "umbrella.co"]
HOSTS = [f"worker-{n}" for n in range(8)]
START = 1_780_000_000_000_000  # epoch micros, some day in 2026


def arguments(rng: random.Random, job_class: str, queue: str, index: int) -> list[Any]:
    """The args array of one job, in one of the shapes Rails apps push."""
    user = rng.randrange(1, 5_000_000)
    name = rng.choice(NAMES)
    email = f"{name}.{rng.randrange(1000)}@{rng.choice(DOMAINS)}"
    shape = rng.randrange(6)
    if shape == 0:
        args: list[Any] = [user]
    elif shape == 1:
        args = [user, email]
    elif shape == 2:
        args = ["Order", rng.randrange(10**7), {"notify": rng.random() < 0.5, "reason": "payment_captured",
                                               "amount_cents": rng.randrange(100, 99_999)}]  # fmt: skip
    elif shape == 3:
        args = [{"job_class": job_class, "job_id": f"{rng.getrandbits(128):032x}", "provider_job_id": None,
                 "queue_name": queue, "priority": None, "executions": 0, "exception_executions": {},
                 "arguments": [{"_aj_globalid": f"gid://shop/User/{user}"}, {"email": email}],
                 "locale": "en", "timezone": "UTC"}]  # fmt: skip
    elif shape == 4:
        args = [f"https://hooks.{rng.choice(DOMAINS)}/v1/{rng.getrandbits(40):010x}",
                {"event": "invoice.paid", "id": f"evt_{rng.getrandbits(64):016x}", "attempt": 1}]  # fmt: skip
    else:
        args = [user, "2026-11-01", "2026-11-30", {"format": "csv", "columns": ["id", "email", "total"]}]
    if index % 1000 == 499:
        args.append(f"note for {MARKER}")
    return args


def generate(rng: random.Random, first: int, count: int, step: int) -> tuple[list[tuple], list[tuple]]:
    """Job rows and event rows of jobs ``first`` .. ``first + count - 1`` (one jobs row each)."""
    jobs: list[tuple] = []
    events: list[tuple] = []
    for index in range(first, first + count):
        job_class, queue, median = CLASSES[bisect.bisect(CUMULATIVE_SHARES, rng.random())]
        args = orjson.dumps(arguments(rng, job_class, queue, index)).decode()
        jid = f"{rng.getrandbits(96):024x}"
        queued = START + index * step + rng.randrange(step)
        started = queued + int(rng.lognormvariate(11.5, 1.2))  # waits of ~0.1 s, long tail
        done = started + int(median * 1e6 * rng.lognormvariate(0, 0.6))
        host = rng.choice(HOSTS)
        worker = orjson.dumps({"identity": f"{host}:{rng.randrange(100, 999)}:abc", "hostname": host,
                               "pid": 100, "thread": "t1"}).decode()  # fmt: skip
        draw = rng.random()
        events.append((jid, "queued", queued, queued + 900, None))
        if draw < 0.05:
            jobs.append((jid, job_class, queue, args, "queued", queued, None, None, 0, None, None))
            continue
        events.append((jid, "started", started, started + 900, f'{{"worker":{worker}}}'))
        if draw < 0.08:
            jobs.append((jid, job_class, queue, args, "started", queued, started, None, 1, None, worker))
        elif draw < 0.095:
            events.append((jid, "failed", done, done + 900, '{"error_class":"Net::ReadTimeout"}'))
            jobs.append((jid, job_class, queue, args, "started", queued, started, None, 1, None, worker))
        elif draw < 0.105:
            # Restarted: the original's row is gone, its history names the replacement.
            new_jid = f"{rng.getrandbits(96):024x}"
            events.append((jid, "restarted", done, done + 10, f'{{"new_jid":"{new_jid}"}}'))
            events.append((new_jid, "queued", done, done + 10, None))
            jobs.append((new_jid, job_class, queue, args, "queued", done, None, None, 0, jid, None))
        else:
            attempts = 1
            if draw < 0.125:  # failed once, retried, then completed
                events.append((jid, "failed", done, done + 900, '{"error_class":"Timeout::Error"}'))
                started, done, attempts = done + 30_000_000, done + (done - started) + 30_000_000, 2
                events.append((jid, "started", started, started + 900, f'{{"worker":{worker}}}'))
            events.append((jid, "complete", done, done + 900, None))
            row = (jid, job_class, queue, args, "complete", queued, started, done, attempts, None, worker)
            jobs.append(row)
    return jobs, events


def chunks(total: int, seed: int) -> Iterator[tuple[list[tuple], list[tuple]]]:
    """The whole ledger, CHUNK jobs at a time; jobs span 30 days, in queue order."""
    rng = random.Random(seed)
    step = max(1, 30 * 86_400_000_000 // max(total, 1))
    for first in range(0, total, CHUNK):
        yield generate(rng, first, min(CHUNK, total - first), step)


def load_sqlite(engine: Engine, total: int, seed: int) -> int:
    """Insert through executemany, one transaction per chunk; the number of event rows."""
    placeholders = {cols: ", ".join("?" * len(cols)) for cols in (JOB_COLUMNS, EVENT_COLUMNS)}
    written = 0
    with engine.connect() as connection:
        for jobs, events in chunks(total, seed):
            with connection.begin():
                for table, cols, rows in (("jobs", JOB_COLUMNS, jobs), ("job_events", EVENT_COLUMNS, events)):
                    sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({placeholders[cols]})"
                    connection.exec_driver_sql(sql, rows)
            written += len(events)
    return written


def _copy_text(rows: list[tuple]) -> str:
    def field(value: Any) -> str:
        if value is None:
            return "\\N"
        text = str(value)
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    return "".join("\t".join(map(field, row)) + "\n" for row in rows)


def secondary_indexes(connection: Connection) -> list[tuple[str, str, str | None]]:
    """(name, CREATE statement or constraint definition, table if a constraint) of every index but the pks."""
    constraints = connection.exec_driver_sql(
        "SELECT conname, pg_get_constraintdef(oid), conrelid::regclass::text FROM pg_constraint "
        "WHERE conrelid IN ('jobs'::regclass, 'job_events'::regclass) AND contype = 'u'"
    ).all()
    indexes = connection.exec_driver_sql(
        "SELECT indexname, indexdef, NULL FROM pg_indexes WHERE tablename IN ('jobs', 'job_events') "
        "AND indexname NOT IN (SELECT conname FROM pg_constraint WHERE contype IN ('u', 'p'))"
    ).all()
    return [tuple(row) for row in [*constraints, *indexes]]  # type: ignore[misc]


def load_postgresql(engine: Engine, total: int, seed: int) -> int:
    """COPY with secondary indexes dropped, then rebuilt; the number of event rows."""
    written = 0
    with engine.connect() as connection:
        saved = secondary_indexes(connection)
        for name, _definition, table in saved:
            drop = f"ALTER TABLE {table} DROP CONSTRAINT {name}" if table else f"DROP INDEX {name}"
            connection.exec_driver_sql(drop)
        connection.commit()
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        for jobs, events in chunks(total, seed):
            with cursor.copy(f"COPY jobs ({', '.join(JOB_COLUMNS)}) FROM STDIN") as copy:
                copy.write(_copy_text(jobs))
            with cursor.copy(f"COPY job_events ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
                copy.write(_copy_text(events))
            written += len(events)
        connection.commit()
        rebuild = time.perf_counter()
        connection.exec_driver_sql("SET maintenance_work_mem = '1GB'")
        for name, definition, table in saved:
            # A partitioned table's index is defined "ON ONLY" the parent: as such it would be
            # built on no partition and stay invalid.
            sql = f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}" if table else definition
            sql = sql.replace(" ON ONLY ", " ON ")
            # Through the driver without parameters: a definition may hold a "%" (a LIKE in a
            # partial index's condition), which a statement with parameters takes for one.
            cursor.execute(sql)
            cursor.connection.commit()
        print(f"indexes rebuilt in {time.perf_counter() - rebuild:.1f} s")
        # VACUUM sets the visibility map (index-only scans) and ANALYZE the planner's statistics.
        connection.connection.driver_connection.autocommit = True  # type: ignore[union-attr]
        connection.exec_driver_sql("VACUUM ANALYZE jobs")
        connection.exec_driver_sql("VACUUM ANALYZE job_events")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--revision", default="head", help="migrate to this revision before loading")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    url = args.database_url
    if url is None:
        Path("/tmp/scale").mkdir(exist_ok=True)
        url = f"sqlite:////tmp/scale/ledger-{args.jobs}.db"
    engine = make_engine(url, sqlite_synchronous="OFF")
    # The rows go in straight, past the writer: the summaries it keeps as it stores reports
    # (migration 0009) are counted by the upgrade that follows the load, as for any ledger written
    # before them.
    upgrade(engine, COUNTED_BY_UPGRADE if args.revision == "head" else args.revision)
    # The 30 days the jobs span, and one more for the last ones' later reports.
    ensure_partitions(engine, START, ahead_days=31)
    began = time.perf_counter()
    if engine.dialect.name == "postgresql":
        events = load_postgresql(engine, args.jobs, args.seed)
    else:
        events = load_sqlite(engine, args.jobs, args.seed)
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    seconds = time.perf_counter() - began
    rows = args.jobs + events
    print(f"{url}: {args.jobs:,} jobs + {events:,} events in {seconds:.1f} s = {rows / seconds:,.0f} rows/s")
    if args.revision == "head":
        began = time.perf_counter()
        upgrade(engine)
        print(f"upgraded to head (counting the summaries of 0009) in {time.perf_counter() - began:.1f} s")
        # A ledger already at head before the load (0016 on) counts its jobs per status afresh.
        with engine.begin() as connection:
            recount(connection)
    engine.dispose()


if __name__ == "__main__":
    main()
