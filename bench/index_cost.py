"""What one index of the jobs table, or the upkeep of the jobs per status, costs the writer,
measured apart from HTTP and other load.

    python bench/index_cost.py --index ix_jobs_queue_id [--jobs 30000] [--batch 32] [--prefill 200000]
    python bench/index_cost.py --job-counts [...]

Two SQLite ledgers at head, one without ``--index`` (or, with ``--job-counts``, one whose writer
leaves ``store.job_counts`` alone), are prefilled with the same jobs (so the
indexes are of a realistic depth) and then take the same seed-shaped reports (each job's queued,
started and complete report, jobs interleaved as the writer's groups hold them) through
``store.writer.write_reports``, a group of ``--batch`` reports per transaction, the two ledgers
alternating group by group (each first in turn) so that whatever else runs on the machine falls
on both alike. It prints the writer thread's CPU per report on each (``time.thread_time``),
median of the groups, and the difference. SQLite runs with ``synchronous=OFF`` so that the
disk's flushes do not hide the CPU.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from sidekiq_supervisor.domain.model import EventKind, Report
from sidekiq_supervisor.store import writer
from sidekiq_supervisor.store.engine import make_engine, write_transaction
from sidekiq_supervisor.store.migrate import upgrade
from sidekiq_supervisor.store.writer import write_reports

T0 = 1_780_000_000_000_000
CLASSES = [(f"Job{n}", f"queue{n % 6}") for n in range(20)]


def reports(first: int, count: int, rng: random.Random) -> list[Report]:
    """Each job's three reports; jobs overlap, as they do in a writer's group."""
    out = []
    for index in range(first, first + count):
        job_class, queue = CLASSES[rng.randrange(len(CLASSES))]
        jid, at, arguments = f"{index:024x}", T0 + index * 1000, f'[{index},"user{index}@example.com"]'
        for step, kind in enumerate((EventKind.QUEUED, EventKind.STARTED, EventKind.COMPLETE)):
            out.append(Report(jid, kind, at + step * 500, job_class, queue, arguments))
    # A job's reports three groups apart at most, as reports from several Sidekiq threads arrive.
    return sorted(out, key=lambda report: (report.at // 1500, rng.random()))


def ledger(name: str, drop: str | None, folder: Path) -> Engine:
    """A ledger at head in ``folder``, without the index ``drop``."""
    engine = make_engine(f"sqlite:///{folder / name}.db", sqlite_synchronous="OFF")
    upgrade(engine)
    if drop:
        with engine.begin() as connection:
            connection.exec_driver_sql(f"DROP INDEX {drop}")
    return engine


def _no_counts(_connection: Any, _changes: Mapping[Any, int]) -> None:
    """The writer's count upkeep, skipped (the ledger ``without`` of ``--job-counts``)."""


def write(engine: Engine, group: list[Report], counts: Callable[..., None]) -> float:
    writer.apply_count_changes = counts  # type: ignore[assignment]
    began = time.thread_time()
    with write_transaction(engine) as connection:
        write_reports(connection, group, T0)
    return time.thread_time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    measured = parser.add_mutually_exclusive_group(required=True)
    measured.add_argument("--index", help="the index to measure (dropped from one ledger)")
    measured.add_argument("--job-counts", action="store_true", help="measure the jobs-per-status upkeep")
    parser.add_argument("--jobs", type=int, default=30_000)
    parser.add_argument("--batch", type=int, default=32, help="reports per transaction")
    parser.add_argument("--prefill", type=int, default=200_000, help="jobs in each ledger before timing")
    args = parser.parse_args()
    rng = random.Random(7)
    measuring = "job_counts" if args.job_counts else args.index
    kept_counts = writer.apply_count_changes
    counts = {"with": kept_counts, "without": _no_counts if args.job_counts else kept_counts}
    with tempfile.TemporaryDirectory() as folder:
        engines = {
            "with": ledger("with", None, Path(folder)),
            "without": ledger("without", args.index, Path(folder)),
        }
        prefill = reports(0, args.prefill, random.Random(1))
        for name, engine in engines.items():
            for start in range(0, len(prefill), 3000):
                write(engine, prefill[start : start + 3000], counts[name])
        timed = reports(args.prefill, args.jobs, rng)
        spent: dict[str, list[float]] = {name: [] for name in engines}
        for number, start in enumerate(range(0, len(timed), args.batch)):
            group = timed[start : start + args.batch]
            # Each goes first every other group: the second runs with the first's work in the caches.
            for name, engine in sorted(engines.items(), reverse=number % 2 == 1):
                spent[name].append(write(engine, group, counts[name]) / len(group) * 1e6)
        for engine in engines.values():
            engine.dispose()
    medians = {name: statistics.median(values) for name, values in spent.items()}
    means = {name: statistics.fmean(values) for name, values in spent.items()}
    for name in engines:
        print(f"{name:8} {measuring}: {medians[name]:6.1f} µs/report median, {means[name]:6.1f} mean")
    median, mean = medians["with"] - medians["without"], means["with"] - means["without"]
    print(f"{measuring} costs {median:+.1f} µs/report (median), {mean:+.1f} (mean), "
          f"of {len(timed):,} reports in groups of {args.batch}")  # fmt: skip


if __name__ == "__main__":
    main()
