"""The ``sidekiq-supervisor`` command: the seed's questions, restarts, migrations and ``serve``'s refusals."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import event
from typer.testing import CliRunner

from sidekiq_supervisor import render
from sidekiq_supervisor.cli import output
from sidekiq_supervisor.cli.main import app, is_loopback
from sidekiq_supervisor.clock import now_micros
from sidekiq_supervisor.domain.durations import DurationSummary
from sidekiq_supervisor.domain.model import EventKind, JobStatus, Report
from sidekiq_supervisor.services import app_ledgers
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import make_engine, write_transaction
from sidekiq_supervisor.store.migrate import MIGRATIONS, upgrade
from sidekiq_supervisor.store.queries import find_job
from sidekiq_supervisor.store.writer import write_reports
from tests.conftest import redis_test_url

SECOND = 1_000_000
EXECUTABLE = Path(sys.executable).with_name("sidekiq-supervisor")

# jid, arguments, events as (kind, seconds before now); written one job per batch, oldest first.
JOBS = [
    ("queued-alice", '[1,"alice"]', [("queued", 100)]),
    ("queued-bob", '[2,"bob"]', [("queued", 90)]),
    ("started-alice", '[3,"Alice"]', [("queued", 80), ("started", 70)]),
    ("started-carol", '[4,"carol"]', [("started", 60)]),
    ("complete-alice", '[5,"ALICE"]', [("queued", 50), ("started", 45), ("complete", 40)]),
    ("complete-dave", '[6,"dave"]', [("queued", 30), ("started", 28), ("complete", 20)]),
    ("complete-erin", '[7,"erin"]', [("started", 15), ("complete", 3)]),
]
ALL_NEWEST_FIRST = [jid for jid, _, _ in reversed(JOBS)]
LISTS = {
    "queued": ["queued-bob", "queued-alice"],
    "uncompleted": ["started-carol", "started-alice"],
    "completed": ["complete-erin", "complete-dave", "complete-alice"],
    "all": ALL_NEWEST_FIRST,
}


# The newest migration, read from the migration scripts themselves.
HEAD_REVISION = ScriptDirectory(str(MIGRATIONS)).get_current_head()


def write(engine, reports) -> None:
    with write_transaction(engine) as connection:
        write_reports(connection, reports, now_micros())


def write_jobs(engine) -> None:
    now = now_micros()
    for jid, arguments, events in JOBS:
        queue = "mail" if "alice" in jid else "default"
        job_class = "MailWorker" if "alice" in jid else "HardWorker"
        write(
            engine,
            [Report(jid, EventKind(k), now - ago * SECOND, job_class, queue, arguments) for k, ago in events],
        )


def run(*args: str):
    return CliRunner().invoke(app, list(args))


def listed_jids(output: str) -> list[str]:
    known = {jid for jid, _, _ in JOBS}
    return [word for line in output.splitlines() for word in line.split() if word in known]


def assert_one_line_error(result) -> None:
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sidekiq-supervisor:")
    assert "Traceback" not in result.output


@pytest.fixture(autouse=True)
def close_cli_engines(monkeypatch):
    """A command leaves its engine to process exit; in this process, close each one after the test."""
    opened = []

    def make_and_track(*args, **kwargs):
        engine = make_engine(*args, **kwargs)
        opened.append(engine)
        return engine

    monkeypatch.setattr(app_ledgers, "make_engine", make_and_track)
    yield
    for engine in opened:
        engine.dispose()


@pytest.fixture
def cli_env(monkeypatch, ledger_url):
    monkeypatch.setenv("DATABASE_URL", ledger_url)
    monkeypatch.setenv("REDIS_URL", redis_test_url())
    monkeypatch.setenv("COLUMNS", "250")  # wide enough that no jid is cut
    return ledger_url


@pytest.fixture
def seeded(cli_env, engine):
    write_jobs(engine)
    return engine


@pytest.mark.parametrize("which", list(LISTS))
def test_jobs_prints_a_table_of_the_list_newest_first(seeded, which):
    result = run("jobs", which)

    assert result.exit_code == 0, result.output
    assert listed_jids(result.stdout) == LISTS[which]
    assert f"{len(LISTS[which])} jobs" in result.stdout


def test_jobs_filters_by_a_substring_of_the_arguments_in_any_case(seeded):
    result = run("jobs", "all", "ALIce")

    assert result.exit_code == 0, result.output
    assert listed_jids(result.stdout) == ["complete-alice", "started-alice", "queued-alice"]
    assert "all jobs matching 'ALIce'" in result.stdout


def test_jobs_filters_by_job_class_and_queue(seeded):
    by_class = run("jobs", "completed", "--job-class", "HardWorker")
    by_queue = run("jobs", "uncompleted", "--queue", "mail")

    assert listed_jids(by_class.stdout) == ["complete-erin", "complete-dave"]
    assert listed_jids(by_queue.stdout) == ["started-alice"]


@pytest.mark.parametrize("which", list(LISTS))
def test_jobs_json_prints_an_array_of_the_list(seeded, which):
    result = run("jobs", which, "--json")

    assert result.exit_code == 0, result.output
    documents = json.loads(result.stdout)
    assert [document["jid"] for document in documents] == LISTS[which]


def test_jobs_json_carries_each_jobs_fields(seeded):
    result = run("jobs", "completed", "dave", "--json")

    (document,) = json.loads(result.stdout)
    assert document["jid"] == "complete-dave"
    assert document["arguments"] == [6, "dave"]
    assert document["status"] == JobStatus.COMPLETE.value
    assert (document["job_class"], document["queue"], document["attempts"]) == ("HardWorker", "default", 1)
    assert document["completed_at"].endswith("+00:00")


def test_jobs_limit_shows_the_newest_jobs_and_says_how_many_there_are(seeded):
    table = run("jobs", "all", "--limit", "2")
    as_json = run("jobs", "all", "--limit", "3", "--json")
    unlimited = run("jobs", "all", "--limit", "0", "--json")

    assert listed_jids(table.stdout) == ALL_NEWEST_FIRST[:2]
    assert "showing the newest 2 of 7 jobs" in table.stdout
    assert [d["jid"] for d in json.loads(as_json.stdout)] == ALL_NEWEST_FIRST[:3]
    assert [d["jid"] for d in json.loads(unlimited.stdout)] == ALL_NEWEST_FIRST


def test_jobs_with_no_match_prints_an_empty_table_or_array(seeded):
    assert json.loads(run("jobs", "all", "nobody", "--json").stdout) == []
    table = run("jobs", "queued", "nobody")
    assert table.exit_code == 0
    assert "0 jobs" in table.stdout


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        ("queued", {"complete-dave": 10.0, "complete-alice": 10.0}),
        ("started", {"complete-erin": 12.0, "complete-dave": 8.0, "complete-alice": 5.0}),
    ],
)
def test_durations_json_gives_each_jobs_duration_in_seconds(seeded, origin, expected):
    result = run("durations", origin, "--json")

    assert result.exit_code == 0, result.output
    documents = json.loads(result.stdout)
    assert [d["jid"] for d in documents] == list(expected)
    assert {d["jid"]: d["duration"] for d in documents} == pytest.approx(expected)


def test_durations_json_takes_the_filter(seeded):
    result = run("durations", "started", "alice", "--json")

    assert [(d["jid"], d["duration"]) for d in json.loads(result.stdout)] == [("complete-alice", 5.0)]


def test_durations_prints_a_table_and_its_summary(seeded):
    result = run("durations", "started")

    assert result.exit_code == 0, result.output
    assert listed_jids(result.stdout) == ["complete-erin", "complete-dave", "complete-alice"]
    assert "summary" in result.stdout
    assert "12 s" in result.stdout


# --- every job: streamed --------------------------------------------------------------------

MANY = 2500  # two and a half of the ledger's pages of 1000 (Ledger.iterate)
MANY_JIDS = [f"many-{n:05d}" for n in reversed(range(MANY))]  # newest first


def write_many(engine) -> None:
    """MANY completed jobs, the n-th taking n ms from start to completion."""
    now = now_micros()
    reports = []
    for n in range(MANY):
        jid, queued = f"many-{n:05d}", now - (MANY - n) * SECOND
        for kind, at in (
            ("queued", queued),
            ("started", queued + 1000),
            ("complete", queued + 1000 + n * 1000),
        ):
            reports.append(Report(jid, EventKind(kind), at, "HardWorker", "default", f"[{n}]"))
    write(engine, reports)


@pytest.fixture
def many(cli_env, engine):
    write_many(engine)
    return engine


def printed_jids(text: str) -> list[str]:
    return re.findall(r"many-\d{5}", text)


@contextmanager
def page_reads(engine, before_each: Callable[[], None]) -> Iterator[list[str]]:
    """Each read of a page of jobs (a SELECT with LIMIT) on ``engine`` meanwhile;
    ``before_each`` runs as each read is sent."""
    reads: list[str] = []

    def record(_connection, _cursor, statement, _parameters, _context, _executemany) -> None:
        if statement.lstrip().startswith("SELECT") and "FROM jobs" in statement and "LIMIT" in statement:
            reads.append(statement)
            before_each()

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield reads
    finally:
        event.remove(engine, "before_cursor_execute", record)


@pytest.mark.parametrize("as_json", [False, True], ids=["table", "json"])
def test_listing_every_job_prints_the_jobs_read_before_reading_more(many, capsys, as_json):
    printed = ""
    printed_at_each_read: list[int] = []

    def before_read() -> None:
        nonlocal printed
        printed += capsys.readouterr().out
        printed_at_each_read.append(len(printed_jids(printed)))

    with page_reads(many, before_read) as reads:
        output.show(JobManager(many).completed_jobs(), limit=0, as_json=as_json)
    printed += capsys.readouterr().out

    assert printed_jids(printed) == MANY_JIDS
    # A read per page of 1000: never the whole list at once.
    assert len(reads) == 3
    # Nothing is held back: when the last page is read, the two pages before it are out.
    assert printed_at_each_read[0] == 0
    assert printed_at_each_read[-1] == 2000


def test_jobs_limit_0_prints_every_job_as_a_text_table_newest_first(many):
    result = run("jobs", "completed", "--limit", "0")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "completed jobs"
    assert lines[1].split()[:4] == ["jid", "class", "queue", "arguments"]
    assert printed_jids(result.stdout) == MANY_JIDS
    assert lines[-1] == f"{MANY:,} jobs"


def test_jobs_limit_above_a_page_says_how_many_there_are(many):
    result = run("jobs", "all", "--limit", "1500")

    assert printed_jids(result.stdout) == MANY_JIDS[:1500]
    assert result.stdout.splitlines()[-1] == f"showing the newest 1,500 of {MANY:,} jobs"


def test_durations_limit_0_prints_every_duration_then_the_summary(many):
    result = run("durations", "started", "--limit", "0")

    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if line.startswith("many-")]
    assert [row.split()[0] for row in rows] == MANY_JIDS
    assert rows[0].endswith(" 2.5 s")  # the newest job took 2499 ms
    assert rows[-1].endswith(" 0 µs")
    assert "summary (percentiles estimated, at most 19% high)" in result.stdout
    assert f"{MANY:,}" in result.stdout.split("summary", 1)[1]
    exact = run("durations", "started", "--limit", "0", "--exact")
    assert "summary" in exact.stdout and "estimated" not in exact.stdout
    assert f"{MANY:,}" in exact.stdout.split("summary", 1)[1]


def test_a_long_table_keeps_control_characters_of_reports_off_the_terminal(cli_env, engine):
    write_many(engine)
    write(engine, [Report("evil\x1b[2Jjid", EventKind.QUEUED, now_micros(), "Bad\nClass", "q", "[1]")])

    result = run("jobs", "all", "--limit", "0")

    assert "\x1b" not in result.stdout
    assert "evil\N{REPLACEMENT CHARACTER}[2Jjid  Bad\N{REPLACEMENT CHARACTER}Class" in result.stdout


def test_an_estimated_summary_is_titled_as_one():
    exact = DurationSummary.from_micros(10, 1.0, 1, 1, 1, 1)
    estimated = replace(exact, estimated=True)

    assert "estimated" not in render.to_text(render.summary_table(exact), width=120)
    assert "summary (estimated from a sample)" in render.to_text(render.summary_table(estimated), width=120)


def test_restart_dry_run_lists_the_candidates_and_changes_nothing(seeded, redis_client):
    result = run("restart", "--dry-run")

    assert result.exit_code == 0, result.output
    assert "would restart 2, skipped 0" in result.stdout
    assert sorted(listed_jids(result.stdout)) == ["started-alice", "started-carol"]
    assert redis_client.keys("*") == []
    assert [d["jid"] for d in json.loads(run("jobs", "uncompleted", "--json").stdout)] == LISTS["uncompleted"]


def test_restart_dry_run_json_and_filter(seeded, redis_client):
    result = run("restart", "carol", "--dry-run", "--json")

    assert result.exit_code == 0, result.output
    *outcomes, summary = [json.loads(line) for line in result.stdout.splitlines()]
    assert summary == {"done": True, "dry_run": True, "counts": {"restarted": 1, "skipped": 0}}
    assert [(o["outcome"], o["jid"], o["new_jid"]) for o in outcomes] == [
        ("restarted", "started-carol", None)
    ]
    assert redis_client.keys("*") == []


def test_restart_pushes_the_uncompleted_jobs_into_sidekiq(seeded, redis_client):
    result = run("restart", "--older-than", "30")

    assert result.exit_code == 0, result.output
    assert "restarted 2, skipped 0" in result.stdout
    assert redis_client.smembers("queues") == {b"mail", b"default"}
    assert redis_client.llen("queue:mail") == 1
    assert redis_client.llen("queue:default") == 1
    assert json.loads(run("jobs", "uncompleted", "--json").stdout) == []


def test_restart_with_sidekiqs_redis_down_fails_with_one_line(seeded, monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")

    result = run("restart")

    assert_one_line_error(result)


def test_an_overlong_filter_fails_with_one_line(cli_env):
    result = run("jobs", "all", "x" * 201)

    assert_one_line_error(result)


def test_the_jobs_table_shows_whole_sidekiq_jids_at_80_columns(cli_env, engine, monkeypatch):
    jid = "0123456789abcdef01234567"  # Sidekiq's jids are 24 hex characters
    write(engine, [Report(jid, EventKind.QUEUED, now_micros(), "HardWorker", "default", "[1]")])
    monkeypatch.setenv("COLUMNS", "80")

    result = run("jobs", "all")

    assert result.exit_code == 0
    assert jid in result.stdout


@pytest.mark.parametrize("columns", ["80", "120"])
def test_the_jobs_table_keeps_long_class_and_queue_names_whole_and_cuts_the_arguments(
    cli_env, engine, monkeypatch, columns
):
    job_class = "ActiveJob::QueueAdapters::SidekiqAdapter::JobWrapper"
    arguments = json.dumps(["ORD-7", "y" * 300])
    write(
        engine, [Report("j1", EventKind.QUEUED, now_micros(), job_class, "mailers_low_priority", arguments)]
    )
    monkeypatch.setenv("COLUMNS", columns)

    result = run("jobs", "all")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(job_class in line for line in lines), result.stdout
    assert any("mailers_low_priority" in line for line in lines), result.stdout
    assert '["ORD-7"' in result.stdout and "y" * 300 not in result.stdout and "…" in result.stdout


def test_db_upgrade_prints_the_schema_revision(cli_env):
    result = run("db", "upgrade")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"schema at revision {HEAD_REVISION}"


def test_db_upgrade_creates_a_new_sqlite_ledger(monkeypatch, tmp_path):
    path = tmp_path / "new.db"
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{path}")

    result = run("db", "upgrade")

    assert result.exit_code == 0, result.output
    assert f"schema at revision {HEAD_REVISION}" in result.stdout
    assert path.exists()


BAD_URLS = {
    "unknown scheme": "foo://",
    "not a url": "not a url",
    "postgres not listening": "postgresql://postgres@127.0.0.1:1/ledger",
    "sqlite in a missing directory": "sqlite:////nonexistent-directory/for/sure/ledger.db",
}


@pytest.mark.parametrize("command", [["jobs", "all"], ["db", "upgrade"], ["restart", "--dry-run"]])
@pytest.mark.parametrize("url", list(BAD_URLS.values()), ids=list(BAD_URLS))
def test_a_bad_database_url_fails_with_one_line_on_stderr(monkeypatch, url, command):
    monkeypatch.setenv("DATABASE_URL", url)

    result = run(*command)

    assert_one_line_error(result)
    assert result.stdout == ""


def test_an_invalid_setting_fails_with_one_line_naming_it(monkeypatch, tmp_path):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    monkeypatch.setenv("SUPERVISOR_SIDEKIQ_VERSION", "99")

    result = run("jobs", "all")

    assert_one_line_error(result)
    assert "sidekiq_version" in result.stderr


def command_env(database_url: str) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_test_url()}


def test_the_installed_command_reports_a_bad_database_url_without_a_traceback():
    completed = subprocess.run(
        [str(EXECUTABLE), "jobs", "all"],
        env=command_env("foo://"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert completed.returncode == 1
    assert completed.stdout == ""
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("sidekiq-supervisor: invalid configuration: DATABASE_URL: foo:// names 'foo'")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False),
     ("supervisor.internal", False)],
)  # fmt: skip
def test_is_loopback_tells_the_addresses_only_this_machine_reaches(host, loopback):
    assert is_loopback(host) is loopback


def test_prune_deletes_old_completed_jobs_and_says_how_many(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'pruned.db'}"
    engine = make_engine(database_url)
    upgrade(engine)
    old, recent = 1_000_000_000_000_000, now_micros()
    old_reports = [
        Report("old", EventKind.QUEUED, old, "W", "default", "[]"),
        Report("old", EventKind.COMPLETE, old + 1, "W", "default", "[]"),
    ]
    with write_transaction(engine) as connection:
        write_reports(connection, old_reports, old + 1)  # received when they happened
        write_reports(
            connection, [Report("recent", EventKind.COMPLETE, recent, "W", "default", "[]")], recent
        )

    result = CliRunner().invoke(app, ["prune"], env={"DATABASE_URL": database_url})

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "deleted 1 completed jobs and 0 history events"
    with engine.connect() as connection:
        assert find_job(connection, "old") is None
        assert find_job(connection, "recent") is not None
    engine.dispose()


def run_on_a_terminal(*args: str, answer: str) -> subprocess.CompletedProcess[str]:
    """The real command on a pseudo-terminal (util-linux ``script``), ``answer`` typed at its prompt."""
    command = " ".join(["sidekiq-supervisor", *args])
    return subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        input=answer,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ},
        check=False,
    )


@pytest.mark.slow  # two runs of the real command on a terminal: 2 s
def test_restart_without_a_filter_asks_on_a_terminal_and_changes_nothing_when_refused(seeded, redis_client):
    refused = run_on_a_terminal("restart", answer="n\n")

    assert refused.returncode != 0
    assert "restart every one of the 2 uncompleted jobs" in refused.stdout
    assert redis_client.keys("*") == []
    assert len(json.loads(run("jobs", "uncompleted", "--json").stdout)) == 2

    accepted = run_on_a_terminal("restart", "--yes", answer="")

    assert accepted.returncode == 0, accepted.stdout
    assert "restart every one" not in accepted.stdout
    assert redis_client.llen("queue:default") + redis_client.llen("queue:mail") == 2


def test_a_restart_of_thousands_prints_a_line_per_job_as_it_goes_and_the_counts(
    cli_env, engine, redis_client
):
    count = output.RICH_TABLE_ROWS + 5
    now = now_micros()
    write(
        engine,
        [
            Report(f"lost-{n:05d}", EventKind.STARTED, now - n, "HardWorker", "default", "[]")
            for n in range(count)
        ],
    )

    result = run("restart", "--dry-run")

    assert result.exit_code == 0, result.output
    *rows, summary = result.stdout.splitlines()
    assert summary == f"would restart {count:,}, skipped 0"
    assert sorted(row.split()[0] for row in rows) == [f"lost-{n:05d}" for n in range(count)]
    assert redis_client.keys("*") == []


@pytest.mark.parametrize("given", ["SUPERVISOR_USERNAME", "SUPERVISOR_PASSWORD"])
def test_half_a_dashboard_credential_pair_refuses_to_start_with_one_line(cli_env, monkeypatch, given):
    monkeypatch.setenv(given, "admin")

    result = run("serve", "--port", "1")

    assert_one_line_error(result)
    missing = "SUPERVISOR_PASSWORD" if given == "SUPERVISOR_USERNAME" else "SUPERVISOR_USERNAME"
    assert f"{given} is set without {missing}" in result.stderr


def test_the_app_refuses_half_a_credential_pair_too():
    with pytest.raises(ValueError, match="set without"):
        Settings(username="admin")


@pytest.mark.parametrize(
    ("variable", "url", "says"),
    [
        ("DATABASE_URL", "postgres ql://u:S3CRETPW@h/db", "is not a database URL"),
        ("DATABASE_URL", "postgresql://u:S3CRETPW@h:abc/db", "is not a database URL"),
        ("DATABASE_URL", "mysql://u:S3CRETPW@h/db", "names 'mysql'"),
        ("REDIS_URL", "redis://u:S3CRETPW@h:abc/0", "is not a usable Redis URL"),
        ("REDIS_URL", "http://u:S3CRETPW@h/0", "is not a usable Redis URL"),
    ],
)
def test_a_malformed_url_gets_one_line_without_its_password(cli_env, monkeypatch, variable, url, says):
    monkeypatch.setenv(variable, url)

    result = run("jobs", "all")

    assert_one_line_error(result)
    assert says in result.stderr
    assert "S3CRETPW" not in result.output + result.stderr
    assert "u:***@h" in result.stderr


def run_console(session: list[str], *args: str, ipython: bool = False) -> subprocess.CompletedProcess[str]:
    """``sidekiq-supervisor console ARGS`` in a new process, ``session``'s lines typed into it (then
    ``exit()``); without ``ipython``, the standard library's console (IPython hidden from it)."""
    hide = "" if ipython else "import sys; sys.modules['IPython'] = None; "
    return subprocess.run(
        [sys.executable, "-c", hide + "from sidekiq_supervisor.cli.main import app; app()", "console", *args],
        input="\n".join([*session, "exit()", ""]),
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "120"},
        check=False,
    )


@pytest.mark.slow  # a new Python process that imports everything: 1-2 s each
@pytest.mark.parametrize("ipython", [False, True], ids=["plain", "ipython"])
def test_the_console_offers_the_seeds_bare_calls_and_prints_tables(seeded, ipython):
    if ipython and importlib.util.find_spec("IPython") is None:
        pytest.skip("IPython is not installed (pip install '.[console]')")
    session = [
        "restart_uncompleted_jobs(dry_run=True)",
        "JobManager.uncompleted_jobs().first(1)",
        "JobManager.all_jobs()[0:2]",
        "JobManager.completed_jobs_duration().summary()",
        "1 / 0",
    ]
    completed = run_console(session, ipython=ipython)
    out = completed.stdout + completed.stderr

    assert "would restart" in out
    assert "NameError" not in out
    assert "Job(jid=" not in out and "DurationSummary(" not in out  # tables, not object dumps
    assert out.count("┃ jid") >= 2 and "┃ count" in out
    assert "ZeroDivisionError" in out
    assert "No module named" not in out and "During handling" not in out


def test_only_serve_and_db_upgrade_migrate_a_read_on_a_new_database_says_what_to_run(tmp_path):
    database_url = f"sqlite:///{tmp_path / 'new.db'}"
    env = {"DATABASE_URL": database_url, "REDIS_URL": ""}

    read = CliRunner().invoke(app, ["jobs", "all"], env=env)
    assert read.exit_code == 1
    assert "has no schema yet" in read.output and "sidekiq-supervisor db upgrade" in read.output
    with make_engine(database_url).connect() as connection:  # the read created no table
        assert not connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'").all()

    upgraded = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0 and "schema at revision" in upgraded.output
    assert CliRunner().invoke(app, ["jobs", "all"], env=env).exit_code == 0
