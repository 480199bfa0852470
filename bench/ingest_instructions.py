"""Seed reports in process under valgrind's callgrind: machine instructions per report, per thread.

    python bench/ingest_instructions.py [--reports 2000] [--python PYTHONPATH-ROOT ...]

The figure a loaded machine does not move: CPU times on a shared machine scattered by a third
between runs of the same code, instruction counts by about 1%. The app is called as ASGI with the
reports ``ingest_seed.py --in-process`` sends (64 at a time), 300 reports to warm it up, then
callgrind counts ``--reports`` more, and this prints the instructions per report of the event
loop's thread and of the group-commit writer's. Needs Debian's ``valgrind``; a run takes a minute
or two (start-up, under valgrind, is most of it). The writer's figure depends on how many reports
each transaction holds, which valgrind's serialised threads change: compare the loop's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from ingest_seed import call_app, seed_request

WARM_UP = 300


async def measured(reports: int, database_url: str) -> None:
    """Under callgrind: warm the app up, then count ``reports`` reports (zeroed before, dumped after)."""
    os.environ["DATABASE_URL"] = database_url
    from sidekiq_supervisor.web.app import create_app

    app = create_app()
    run, statuses = uuid.uuid4().hex[:8], []
    async with app.router.lifespan_context(app):
        for round_, count in enumerate((WARM_UP, reports)):
            pending = iter(seed_request(run, round_ * 1_000_000 + i) for i in range(count))

            async def connection(reports: Iterator[tuple[str, bytes]]) -> None:
                for path, body in reports:
                    await call_app(app, path, body, statuses)

            if round_:
                _callgrind_control("--zero")
            await asyncio.gather(*(connection(pending) for _ in range(64)))
            if round_:
                _callgrind_control("--dump=measured")
    failed = sum(status not in (200, 201) for status in statuses)
    print(f"non-2xx {failed} of {len(statuses)}")


def _callgrind_control(option: str) -> None:
    subprocess.run(["callgrind_control", option, str(os.getpid())], check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=2000)
    parser.add_argument("--measured", metavar="DIR", help=argparse.SUPPRESS)  # the run under valgrind
    args = parser.parse_args()
    if args.measured is not None:
        import uvloop  # the event loop uvicorn runs the service on

        uvloop.run(measured(args.reports, f"sqlite:///{args.measured}/bench.db"))
        return
    workdir = tempfile.mkdtemp(prefix="ingest-instructions-")
    valgrind = ["valgrind", "--tool=callgrind", "--separate-threads=yes", "--collect-systime=no"]
    valgrind.append(f"--callgrind-out-file={workdir}/callgrind.%p")
    script = [sys.executable, __file__, "--reports", str(args.reports), "--measured", workdir]
    # pymalloc's arenas are fine under valgrind; the system allocator keeps its counts steadier.
    env = {**os.environ, "PYTHONMALLOC": "malloc"}
    output = subprocess.run([*valgrind, *script], env=env, capture_output=True, text=True, check=True)
    print(output.stdout.strip())
    # The dump of the measured round: one file per thread, named "<pid>.<dump>-<thread>".
    for path in sorted(Path(workdir).glob("callgrind.*.1-*")):
        text = path.read_text(errors="replace")
        summary = re.search(r"^summary: (\d+)", text, re.MULTILINE)
        if summary is None or int(summary[1]) == 0:
            continue  # a thread that ran nothing meanwhile (the default executor's, say)
        thread = path.name.rpartition("-")[2]
        role = "event loop" if thread == "01" else f"thread {int(thread)}"  # the writer's, mostly
        print(f"{role:12} {int(summary[1]) / args.reports:,.0f} instructions/report")


if __name__ == "__main__":
    main()
