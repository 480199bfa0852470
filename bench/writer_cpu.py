"""The writer alone: CPU per report of ``store.writer.write_reports`` in seed-shaped groups.

    python bench/writer_cpu.py [--jobs 20000] [--batch 32] [--profile]

A SQLite ledger at head takes each job's queued, started and complete report (20 classes on 6
queues, jobs interleaved as the writer's groups hold them: ``index_cost.reports``), a group of
``--batch`` reports per transaction, as the group-commit writer sends them. The first tenth warms
the ledger up; the rest is timed with ``time.thread_time`` (the thread's CPU, SQLite's included)
and printed per report. SQLite runs with ``synchronous=OFF`` so that the disk's flushes do not
hide the CPU. ``--profile`` prints cProfile's top functions for the timed part instead.

To compare with an earlier version, run the same script with that version's code first on the
path: ``PYTHONPATH=/path/to/export/src python bench/writer_cpu.py``.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import tempfile
import time
from pathlib import Path

from index_cost import ledger, reports

from sidekiq_supervisor.domain.model import Report
from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.writer import write_reports

RECORDED_AT = 1_780_000_000_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--profile", action="store_true", help="cProfile's top functions instead")
    args = parser.parse_args()
    every = reports(0, args.jobs, random.Random(1))
    groups = [every[start : start + args.batch] for start in range(0, len(every), args.batch)]
    warm, timed = groups[: len(groups) // 10], groups[len(groups) // 10 :]
    with tempfile.TemporaryDirectory() as folder:
        engine = ledger("writer", None, Path(folder))

        def write(groups: list[list[Report]]) -> None:
            for group in groups:
                with write_transaction(engine) as connection:
                    write_reports(connection, group, RECORDED_AT)

        write(warm)
        if args.profile:
            profile = cProfile.Profile()
            profile.runcall(write, timed)
            pstats.Stats(profile).sort_stats("tottime").print_stats(30)
        else:
            began = time.thread_time()
            write(timed)
            spent = time.thread_time() - began
            count = sum(len(group) for group in timed)
            per_report = spent / count * 1e6
            print(f"{count:,} reports in groups of {args.batch}: {per_report:.1f} µs of CPU per report")
        engine.dispose()


if __name__ == "__main__":
    main()
