"""bench/recovery.py, on small sizes: jobs of fake Sidekiq processes lost at once are each pushed
again exactly once as they were pushed, and a pass over a loaded ledger is timed (scenarios B and C;
A needs a real Sidekiq, which the end-to-end tests of automatic recovery cover)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# The bench as a process: a stale window of 8 s, then a few passes over a ledger of 3000 jobs.
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.mark.timeout(180)
def test_the_recovery_bench_pushes_each_lost_job_once_and_times_passes(ledger_url, redis_test_url):
    database = [] if ledger_url.startswith("sqlite") else ["--database-url", ledger_url]
    sizes = ["--lost", "200", "--lost-processes", "4", "--ledger-jobs", "3000", "--passes", "1"]
    done = subprocess.run(
        [sys.executable, str(BENCH / "recovery.py"), "--scenarios", "b,c", "--profiles", "short",
         *sizes, "--few-lost", "3", "--cut", "20", "--redis-url", redis_test_url, *database],
        capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = done.stdout
    assert "with their class, options and arguments: 200/200" in printed
    assert "last heartbeat → all 200 in queues" in printed
    assert "one pass over a ledger of 3,000 jobs" in printed
    lines = [line.split() for line in printed.splitlines()]
    few_lost = next(words for words in lines if words[:2] == ["3", "lost"])
    assert few_lost[-1] == "3"  # each pass pushed its 3 lost jobs
    cut = next(words for words in lines if words[:3] == ["nothing", "to", "do,"])
    assert cut[3] == "20" and cut[-1] == "0"
