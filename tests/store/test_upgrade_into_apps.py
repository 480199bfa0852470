"""A ledger of the release before apps existed becomes the default app's, whole.

The previous release's ledger is built as it wrote it: thousands of jobs and their history put in
with raw SQL (today's writer needs tables of later revisions) at revision 0008, then migrated to
0009, whose upgrade counts the summaries that release's writer kept. Its answers are recorded
through the JobManager; then ``sidekiq-supervisor db upgrade --config FILE`` runs, and the
service starts, with a configuration file of two apps whose first is DATABASE_URL's. The first
app answers exactly as before, the second has nothing, and the ledger records that it is the
first app's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from bench.load_ledger import EVENT_COLUMNS, JOB_COLUMNS, MARKER, START, chunks
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from sidekiq_supervisor.domain.model import JobStatus
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.services.results import DurationList, Job, JobList, PrintedSummary
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import current_revision, head_revision, upgrade
from sidekiq_supervisor.store.ownership import owner
from sidekiq_supervisor.store.partitions import ensure_partitions
from sidekiq_supervisor.web.app import create_app
from tests.conftest import redis_test_url

# Thousands of rows loaded and read back on each database: seconds, not milliseconds.
pytestmark = pytest.mark.slow

JOBS = 3000
PREVIOUS_RELEASE = "0009"
# The revision whose upgrade counts the summaries of the jobs already stored (0009's).
BEFORE_SUMMARIES = "0008"
CLASS = "ChargeCardJob"
DOMAIN = "acme.io"


def load_previous_release(engine: Engine) -> None:
    """The ledger as the release before apps left it: bench/load_ledger.py's jobs (complete,
    failed, running, queued, restarted, some with a marker in their arguments) and history."""
    upgrade(engine, BEFORE_SUMMARIES)
    ensure_partitions(engine, START, ahead_days=31)  # the days the jobs span, on PostgreSQL
    tables = (("jobs", JOB_COLUMNS), ("job_events", EVENT_COLUMNS))
    with engine.begin() as connection:
        for rows in chunks(JOBS, seed=41):
            for (table, columns), values in zip(tables, rows, strict=True):
                names, placeholders = ", ".join(columns), ", ".join(f":{c}" for c in columns)
                statement = text(f"INSERT INTO {table} ({names}) VALUES ({placeholders})")
                connection.execute(statement, [dict(zip(columns, row, strict=True)) for row in values])
    upgrade(engine, PREVIOUS_RELEASE)
    assert current_revision(engine) == PREVIOUS_RELEASE


@dataclass
class Answers:
    """What the ledger answers: counts, lists, duration summaries, a filtered list, histories."""

    rows: dict[str, int]
    status_counts: dict[JobStatus, int]
    counts: dict[str, int]
    lists: dict[str, list[Job]]
    summaries: dict[str, PrintedSummary]
    histories: dict[str, list[Any]]


def answers_of(
    manager: JobManager, rows: dict[str, int], history_of: list[str], *, counted: bool = True
) -> Answers:
    """The answers; unless ``counted``, the counts are those of the lists read (the ledger of the
    previous release has no ``job_counts``, which today's counts read)."""
    durations: dict[str, DurationList] = {
        "from queued": manager.queued_to_completion_duration(),
        "from started": manager.completed_jobs_duration(),
        "at acme": manager.completed_jobs_duration(DOMAIN),
        "of one class": manager.completed_jobs_duration(job_class=CLASS),
    }
    questions: dict[str, JobList] = {
        "queued": manager.queued_jobs(),
        "uncompleted": manager.uncompleted_jobs(),
        "completed": manager.completed_jobs(),
        "all": manager.all_jobs(),
        "marked": manager.all_jobs(MARKER.upper()),
        "completed at acme": manager.completed_jobs(DOMAIN),
        "of one class": manager.all_jobs(job_class=CLASS),
        **{f"durations {name}": answer for name, answer in durations.items()},
    }
    summaries = {name: answer.summary() for name, answer in durations.items()}
    summaries |= {f"{name}, exact": answer.summary(exact=True) for name, answer in durations.items()}
    # Iterated, not list(): list() asks the answer's len(), a count.
    lists = {name: list(iter(answer)) for name, answer in questions.items()}
    if counted:
        counts = {name: len(answer) for name, answer in questions.items()}
        status_counts = manager.ledger.status_counts()
    else:
        counts = {name: len(jobs) for name, jobs in lists.items()}
        statuses = Counter(job.status for job in lists["all"])
        status_counts = {status: statuses[status] for status in JobStatus}
    return Answers(
        rows=rows,
        status_counts=status_counts,
        counts=counts,
        lists=lists,
        summaries=summaries,
        histories={jid: manager.ledger.history(jid) for jid in history_of},
    )


def table_rows(engine: Engine) -> dict[str, int]:
    with engine.connect() as connection:
        return {
            table: connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("jobs", "job_events", "duration_rollups", "event_counts")
        }


def sample_jids(engine: Engine) -> list[str]:
    """Jids whose history to compare: some of each status, and restarted ones (row gone)."""
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT jid FROM jobs ORDER BY id LIMIT 40")).scalars().all()
        restarted = connection.execute(
            text("SELECT jid FROM job_events WHERE kind = 'restarted' ORDER BY jid LIMIT 10")
        ).scalars()
        return [*kept, *restarted]


def api_list(client: TestClient, prefix: str = "", **params: str) -> list[str]:
    """Every jid of an API list, page after page."""
    jids: list[str] = []
    cursor: int | None = None
    while True:
        query = {"limit": "1000", **params, **({"cursor": str(cursor)} if cursor is not None else {})}
        response = client.get(f"{prefix}/api/v1/jobs", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        jids += [job["jid"] for job in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return jids


def test_a_ledger_of_the_previous_release_becomes_the_default_apps_with_every_answer_kept(
    unmigrated_database_url, tmp_path
):
    database_url = unmigrated_database_url
    engine = make_engine(database_url)
    try:
        load_previous_release(engine)
        rows = table_rows(engine)
        assert rows["jobs"] == JOBS and rows["job_events"] > 2 * JOBS
        history_of = sample_jids(engine)
        before = answers_of(JobManager(engine), rows, history_of, counted=False)
    finally:
        engine.dispose()
    assert all(before.counts.values()) and len(before.lists["marked"]) == JOBS // 1000
    assert all(before.histories.values())

    config = tmp_path / "apps.toml"
    config.write_text(
        f'[apps.shop]\nredis_url = "{redis_test_url()}"\n\n[apps.billing]\nredis_url = "{redis_test_url()}"\n'
    )
    # The command an operator runs before starting the new release: every app's ledger to head.
    environment = {"DATABASE_URL": database_url, "REDIS_URL": redis_test_url(), "SUPERVISOR_CONFIG": ""}
    upgraded = subprocess.run(
        [sys.executable, "-m", "sidekiq_supervisor", "db", "upgrade", "--config", str(config)],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert upgraded.returncode == 0, upgraded.stderr
    lines = upgraded.stdout.splitlines()
    assert [line.partition(" (")[0] for line in lines] == [
        f"shop: schema at revision {head_revision()}",
        f"billing: schema at revision {head_revision()}",
    ], upgraded.stdout
    engine = make_engine(database_url)
    try:
        assert owner(engine) == "shop"  # claimed by the upgrade already
    finally:
        engine.dispose()

    # Retention off: the loaded jobs are months old, and pruning them is not the subject here.
    settings = Settings(
        database_url=database_url,
        redis_url=redis_test_url(),
        config=str(config),
        retention_days=0,
        history_retention_days=0,
    )
    with TestClient(create_app(settings)) as client:
        apps = client.app.state.apps
        shop, billing = apps.get("shop"), apps.get("billing")
        assert apps.default is shop
        after = answers_of(shop.manager, table_rows(shop.engine), history_of)
        for field in ("rows", "status_counts", "counts", "histories", "summaries"):
            assert getattr(after, field) == getattr(before, field), field
        for name, jobs in before.lists.items():
            assert after.lists[name] == jobs, name

        # Over HTTP, unprefixed and under /apps/shop alike: the same counts and lists.
        expected_counts = {status.value: n for status, n in before.status_counts.items()}
        expected_counts["total"] = sum(before.status_counts.values())
        every_jid = [job.jid for job in before.lists["all"]]
        marked = [job.jid for job in before.lists["marked"]]
        for prefix in ("", "/apps/shop"):
            assert client.get(f"{prefix}/api/v1/stats").json() == {"jobs": expected_counts}
            assert api_list(client, prefix, status="all") == every_jid
            assert api_list(client, prefix, q=MARKER.lower()) == marked

        # The second app starts empty, in a ledger of its own.
        assert billing.manager.ledger.status_counts() == dict.fromkeys(before.status_counts, 0)
        assert api_list(client, "/apps/billing", status="all") == []
        assert client.get("/apps/billing/api/v1/stats").json()["jobs"]["total"] == 0
        assert billing.engine.url != shop.engine.url or database_url.startswith("postgresql")
        assert (owner(shop.engine), owner(billing.engine)) == ("shop", "billing")
        assert current_revision(billing.engine) == head_revision()

    # The ledger of DATABASE_URL says whose it is, once the service has stopped too.
    engine = make_engine(database_url)
    try:
        assert owner(engine) == "shop"
        assert current_revision(engine) == head_revision()
        assert table_rows(engine) == before.rows
    finally:
        engine.dispose()
