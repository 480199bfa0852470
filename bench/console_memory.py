"""Peak memory of listing every job: the CLI's ``jobs all --limit 0`` and the console's iteration.

    python bench/console_memory.py [--jobs 1000000] [--database PATH] [--keep] [--only REGEX]

Loads ``--jobs`` jobs into a fresh SQLite file with ``bench/load_ledger.py``'s bulk loader (or,
with ``--keep``, reuses the file when it is already there), then runs each case in a child
process of its own and prints the child's peak resident memory (its VmHWM, which the child
reads as it exits) and its wall time:

- the CLI, ``sidekiq-supervisor jobs all --limit 0`` (a table) and ``--json``, and ``durations
  started --limit 0 --json``, each writing to /dev/null (the installed script, run by runpy in
  the child so that the child can report its VmHWM);
- the console's questions in a child Python, as typed at its prompt: iterating
  ``JobManager.all_jobs()`` and ``JobManager.completed_jobs_duration()`` to the end, printing
  the duration list, and its ``summary()``;
- ``list(JobManager.all_jobs())``, which keeps every job by definition: the reference for what
  holding the whole answer costs;
- the floor: a child that imports the package, opens the ledger and reads one job.

Streaming cases should stay near the floor whatever the number of jobs.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from load_ledger import load_sqlite

from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import upgrade

EXECUTABLE = Path(sys.executable).with_name("sidekiq-supervisor")
# Every child reads its own VmHWM (the high-water mark of its resident memory) as it exits and
# writes it to the file the benchmark names. ru_maxrss from wait4 or getrusage(RUSAGE_CHILDREN)
# cannot be used: Linux folds the parent's RSS at fork time into the child's maxrss, and this
# parent holds the loader's memory.
PROBE = """
import atexit, os
def _report_hwm():
    with open("/proc/self/status") as status:
        hwm = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(os.environ["CONSOLE_MEMORY_REPORT"], "w") as report:
        report.write(hwm)
atexit.register(_report_hwm)
"""
# Console cases: what a user types at the console's prompt (JobManager is the package's, bound to
# DATABASE_URL, as in `sidekiq-supervisor console`). Each prints how many jobs it saw.
PRELUDE = "from sidekiq_supervisor import JobManager\n"
CONSOLE_CASES = {
    "floor: import, open the ledger, read one job": "print(len(JobManager.all_jobs().first(1)))",
    "for job in JobManager.all_jobs(): pass": """
        seen = 0
        for job in JobManager.all_jobs():
            seen += 1
        print(seen)
    """,
    "for job in JobManager.completed_jobs_duration(): pass": """
        seen = 0
        for job in JobManager.completed_jobs_duration():
            seen += 1
        print(seen)
    """,
    "repr(JobManager.completed_jobs_duration())": """
        text = repr(JobManager.completed_jobs_duration())
        print(text.count("\\n"))
    """,
    "JobManager.completed_jobs_duration().summary()": """
        print(JobManager.completed_jobs_duration().summary().count)
    """,
    "list(JobManager.all_jobs())  [holds every job]": "print(len(list(JobManager.all_jobs())))",
}
# CLI cases run the installed ``sidekiq-supervisor`` script itself (runpy), under the probe.
CLI_CASES = {
    "sidekiq-supervisor jobs all --limit 0 > /dev/null": ["jobs", "all", "--limit", "0"],
    "sidekiq-supervisor jobs all --limit 0 --json > /dev/null": ["jobs", "all", "--limit", "0", "--json"],
    "sidekiq-supervisor durations started --limit 0 --json > /dev/null": [
        "durations",
        "started",
        "--limit",
        "0",
        "--json",
    ],
}


@dataclass(frozen=True, slots=True)
class Measured:
    """What one child process cost."""

    peak_mib: float
    seconds: float
    output: str


def measure(code: str, env: dict[str, str], *, stdout_to_null: bool) -> Measured:
    """Run ``code`` in a child Python to its end; the child's own peak RSS and wall time."""
    with tempfile.NamedTemporaryFile("r", suffix=".hwm") as report:
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PROBE + code],
            env={**env, "CONSOLE_MEMORY_REPORT": report.name},
            stdout=subprocess.DEVNULL if stdout_to_null else subprocess.PIPE,
            stderr=subprocess.PIPE,
            check=False,
        )
        seconds = time.perf_counter() - began
        if done.returncode != 0:
            raise RuntimeError(f"{code!r} failed:\n{done.stderr.decode()}")
        peak_kib = int(report.read().strip())
    out = done.stdout.decode().strip() if done.stdout else ""
    return Measured(peak_kib / 1024, seconds, out)


def load(path: Path, jobs: int, seed: int, keep: bool) -> str:
    """The URL of a SQLite ledger of ``jobs`` jobs at ``path`` (loaded now unless kept)."""
    url = f"sqlite:///{path}"
    if keep and path.exists():
        print(f"reusing {path}")
        return url
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url, sqlite_synchronous="OFF")
    upgrade(engine)
    began = time.perf_counter()
    events = load_sqlite(engine, jobs, seed)
    with engine.connect() as connection:
        connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    print(f"loaded {jobs:,} jobs + {events:,} events into {path} in {time.perf_counter() - began:.1f} s")
    return url


def _run_script(argv: list[str]) -> str:
    """Code that runs the installed command with ``argv``, as its own script would."""
    return (
        f"import runpy, sys\nsys.argv = {[str(EXECUTABLE), *argv]!r}\n"
        f"runpy.run_path({str(EXECUTABLE)!r}, run_name='__main__')"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--database", type=Path, help="SQLite file (default /tmp/scale/console-<N>.db)")
    parser.add_argument("--keep", action="store_true", help="reuse the file if it exists")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--only", help="regular expression on the case's name")
    args = parser.parse_args()
    path = args.database or Path(f"/tmp/scale/console-{args.jobs}.db")
    url = load(path, args.jobs, args.seed, args.keep)
    # No Redis is needed to read the ledger; COLUMNS fixes the table's width off a terminal.
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": "", "COLUMNS": "160"}
    cases = [(name, PRELUDE + textwrap.dedent(code).strip(), False) for name, code in CONSOLE_CASES.items()]
    cases += [(name, _run_script(argv), True) for name, argv in CLI_CASES.items()]
    print(f"{'case':64} {'peak RSS MiB':>12} {'seconds':>8}  jobs seen")
    for name, code, to_null in cases:
        if args.only and not re.search(args.only, name):
            continue
        measured = measure(code, env, stdout_to_null=to_null)
        seen = measured.output.splitlines()[-1] if measured.output else ""
        print(f"{name:64} {measured.peak_mib:12.1f} {measured.seconds:8.1f}  {seen}", flush=True)


if __name__ == "__main__":
    main()
