"""bench/load_ledger.py fills a ledger the reads can trust; bench/query_scale.py runs over it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from sidekiq_supervisor.store.engine import make_engine

# Two bench scripts as processes, loading and querying thousands of jobs: 2-3 s per ledger.
pytestmark = pytest.mark.slow

BENCH = Path(__file__).resolve().parents[2] / "bench"
JOBS = 4000


def run(script: str, *arguments: str) -> str:
    done = subprocess.run(
        [sys.executable, str(BENCH / script), *arguments], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def scalar(engine, sql: str) -> int:
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar_one()


def test_the_loaded_ledger_is_consistent_and_the_filter_matches_one_job_in_a_thousand(ledger_url):
    printed = run("load_ledger.py", "--jobs", str(JOBS), "--database-url", ledger_url)
    assert "rows/s" in printed
    engine = make_engine(ledger_url)
    try:
        assert scalar(engine, "SELECT count(*) FROM jobs") == JOBS
        marked = "SELECT count(*) FROM jobs WHERE lower(arguments) LIKE '%qzx-marker-7731%'"
        assert scalar(engine, marked) == JOBS // 1000
        statuses = "SELECT count(DISTINCT status) FROM jobs"
        assert scalar(engine, statuses) == 3
        assert scalar(engine, "SELECT count(DISTINCT job_class) FROM jobs") == 20
        # Timelines agree with the history: one queued event per job row, one complete per
        # completed job, times in order.
        orphans = "SELECT count(*) FROM jobs j WHERE NOT EXISTS (SELECT 1 FROM job_events e "
        orphans += "WHERE e.jid = j.jid AND e.kind = 'queued' AND e.at = j.queued_at)"
        assert scalar(engine, orphans) == 0
        unfinished = "SELECT count(*) FROM jobs j WHERE status = 'complete' AND NOT EXISTS ("
        unfinished += "SELECT 1 FROM job_events e WHERE e.jid = j.jid AND e.kind = 'complete' "
        unfinished += "AND e.at = j.completed_at)"
        assert scalar(engine, unfinished) == 0
        disorder = "SELECT count(*) FROM jobs WHERE started_at < queued_at OR completed_at < started_at"
        assert scalar(engine, disorder) == 0
        # A restarted original left the ledger; its replacement names it.
        restarted = "SELECT count(*) FROM jobs j JOIN job_events e ON e.jid = j.restarted_from "
        restarted += "AND e.kind = 'restarted'"
        assert scalar(engine, restarted) == scalar(
            engine, "SELECT count(*) FROM jobs WHERE restarted_from IS NOT NULL"
        )
        assert scalar(engine, "SELECT count(*) FROM jobs WHERE restarted_from IS NOT NULL") > 0
        gone = "SELECT count(*) FROM jobs WHERE jid IN (SELECT restarted_from FROM jobs)"
        assert scalar(engine, gone) == 0
    finally:
        engine.dispose()

    table = run("query_scale.py", "--database-url", ledger_url, "--runs", "1", "--only", "all_jobs|stats")
    assert "all_jobs count" in table
    assert "Count(value=4000, estimated=False)" in table
