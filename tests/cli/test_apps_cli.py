"""The command line and ``JobManager`` with several apps: ``--config FILE`` (or SUPERVISOR_CONFIG)
names them, ``--app NAME`` picks one (the file's first without it), and each answer, migration and
restart is that app's alone."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import uvicorn
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

import sidekiq_supervisor
from sidekiq_supervisor.apps import load_apps
from sidekiq_supervisor.cli.main import app
from sidekiq_supervisor.services import app_ledgers
from sidekiq_supervisor.services.app_ledgers import UnknownApp
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.settings import Settings
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import current_revision, head_revision
from sidekiq_supervisor.store.ownership import owner
from sidekiq_supervisor.web.app import create_app
from tests.cli.test_cli import run_console
from tests.conftest import redis_test_url

APPS = ("shop", "billing")
# Each app's jobs, as (jid, events); the same jid in both apps is two jobs.
JOBS = {
    "shop": [("shop-queued", ["queued"]), ("shop-lost", ["queued", "started"]), ("same-jid", ["queued"])],
    "billing": [("billing-lost", ["queued", "started"]), ("same-jid", ["queued", "started", "complete"])],
}


@pytest.fixture(autouse=True)
def close_engines(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Engine]]:
    """A command leaves its engines to process exit; in this process, close each after the test."""
    opened: list[Engine] = []

    def make_and_track(*args: object, **kwargs: object) -> Engine:
        engine = make_engine(*args, **kwargs)  # type: ignore[arg-type]  # make_engine's own arguments
        opened.append(engine)
        return engine

    monkeypatch.setattr(app_ledgers, "make_engine", make_and_track)
    yield opened
    for engine in opened:
        engine.dispose()


@pytest.fixture
def config(tmp_path: Path, second_redis_client: redis.Redis, second_redis_url: str) -> Path:
    """The apps file: shop (the default app) on the tests' Redis, billing on a Redis of its own."""
    path = tmp_path / "apps.toml"
    path.write_text(
        f'[apps.shop]\nredis_url = "{redis_test_url()}"\n\n[apps.billing]\nredis_url = "{second_redis_url}"\n'
    )
    return path


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, unmigrated_database_url: str) -> str:
    """The environment of a command: the ledger and Redis, no SUPERVISOR_CONFIG (tests set it)."""
    monkeypatch.setenv("DATABASE_URL", unmigrated_database_url)
    monkeypatch.setenv("REDIS_URL", redis_test_url())
    monkeypatch.setenv("COLUMNS", "250")
    # Unset, and as it was after the test, even once `serve` or `console` (which hand --config on
    # through it) set it: setenv records its value before, which delenv alone would not when unset.
    monkeypatch.setenv("SUPERVISOR_CONFIG", "")
    monkeypatch.delenv("SUPERVISOR_CONFIG")
    return unmigrated_database_url


@pytest.fixture
def reported(env: str, config: Path, redis_client: redis.Redis) -> Path:
    """Both apps' jobs, reported over the HTTP API as their Sidekiq would (which migrates and
    claims both ledgers); the apps file."""
    settings = Settings(database_url=env, redis_url=redis_test_url(), config=str(config))
    with TestClient(create_app(settings)) as client:
        for name, jobs in JOBS.items():
            for jid, events in jobs:
                for event in events:
                    path = f"/apps/{name}/api/v1/jobs" + ("" if event == "queued" else f"/{jid}/{event}")
                    report = {"job_id": jid, "arguments": f'["{name}"]', "job_class": "W", "queue": "q"}
                    response = client.post(path, data=report)
                    assert response.status_code in (200, 201), response.text
    return config


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, list(args), env=env)


def listed(*args: str, env: dict[str, str] | None = None) -> list[str]:
    result = run("jobs", "all", "--json", *args, env=env)
    assert result.exit_code == 0, result.output
    return [job["jid"] for job in json.loads(result.stdout)]


def assert_one_line_error(result, *words: str) -> None:
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("sidekiq-supervisor:")
    for word in words:
        assert word in lines[0], lines[0]


SHOP_JIDS = ["same-jid", "shop-lost", "shop-queued"]
BILLING_JIDS = ["same-jid", "billing-lost"]


def test_each_command_answers_for_its_app_and_without_app_for_the_first(reported):
    config = str(reported)
    assert listed("--config", config, "--app", "billing") == BILLING_JIDS
    assert listed("--config", config) == SHOP_JIDS
    assert listed("--config", config, "--app", "shop") == SHOP_JIDS

    uncompleted = run("jobs", "uncompleted", "--config", config, "--app", "billing")
    assert uncompleted.exit_code == 0, uncompleted.output
    assert "billing-lost" in uncompleted.stdout and "shop-lost" not in uncompleted.stdout
    durations = run("durations", "started", "--json", "--config", config, "--app", "billing")
    assert [job["jid"] for job in json.loads(durations.stdout)] == ["same-jid"]
    assert json.loads(run("durations", "started", "--json", "--config", config).stdout) == []
    liveness = run("liveness", "--json", "--config", config, "--app", "billing")
    assert liveness.exit_code == 0, liveness.output
    assert "billing-lost" in liveness.stdout and "shop-lost" not in liveness.stdout
    for command in (["recoveries"], ["alerts"], ["prune"]):
        result = run(*command, "--config", config, "--app", "billing")
        assert result.exit_code == 0, (command, result.output)


def test_config_is_supervisor_config_and_overrides_it(reported, tmp_path):
    by_variable = listed("--app", "billing", env={"SUPERVISOR_CONFIG": str(reported)})
    elsewhere = tmp_path / "other.toml"
    elsewhere.write_text("[apps.other]\nbogus = 1\n")
    overriding = listed(
        "--config", str(reported), "--app", "billing", env={"SUPERVISOR_CONFIG": str(elsewhere)}
    )

    assert by_variable == overriding == BILLING_JIDS
    assert listed(env={"SUPERVISOR_CONFIG": str(reported)}) == SHOP_JIDS


def test_db_upgrade_migrates_and_claims_every_apps_ledger_a_line_each(env, config):
    result = run("db", "upgrade", "--config", str(config))

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == list(APPS)
    assert all(f"schema at revision {head_revision()}" in line for line in lines)
    assert "billing" in lines[1].split("(", 1)[1]  # where: billing's own file, or its own schema
    apps = load_apps(Settings(database_url=env), config)
    for each in apps:
        engine = app_ledgers.open_app_ledger(apps, each)
        try:
            assert (owner(engine), current_revision(engine)) == (each.name, head_revision())
        finally:
            engine.dispose()


def test_db_upgrade_with_app_migrates_that_apps_ledger_only(env, config):
    result = run("db", "upgrade", "--config", str(config), "--app", "billing")

    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"billing: schema at revision {head_revision()}")
    assert len(result.stdout.splitlines()) == 1
    shop_engine = make_engine(env)
    try:
        assert current_revision(shop_engine) is None
    finally:
        shop_engine.dispose()
    read = run("jobs", "all", "--config", str(config))
    assert_one_line_error(read, "app 'shop'", "db upgrade")


BAD_FILE = '[apps.shop]\nredis_url = "redis://127.0.0.1:6379/0"\nretention_dayz = 3\n'
COMMANDS = [
    ["jobs", "all"],
    ["durations", "queued"],
    ["liveness"],
    ["recoveries"],
    ["alerts"],
    ["restart", "--yes"],
    ["prune"],
    ["console"],
    ["db", "upgrade"],
    ["serve", "--port", "1"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_a_bad_file_stops_every_command_with_one_line_naming_the_line_and_the_key(env, tmp_path, command):
    bad = tmp_path / "apps.toml"
    bad.write_text(BAD_FILE)

    by_option = run(*command, "--config", str(bad))
    by_variable = run(*command, env={"SUPERVISOR_CONFIG": str(bad)})

    for result in (by_option, by_variable):
        assert_one_line_error(result, f"{bad}:3", "retention_dayz")
        assert result.stdout == ""
    missing = run(*command, "--config", str(tmp_path / "missing.toml"))
    assert_one_line_error(missing, "missing.toml", "cannot read")


@pytest.mark.parametrize("command", [c for c in COMMANDS if c[0] != "serve"], ids=lambda command: command[0])
def test_an_unknown_app_stops_with_one_line_naming_the_apps_there_are(env, config, command):
    result = run(*command, "--config", str(config), "--app", "nope")

    assert_one_line_error(result, "no app named 'nope'", "shop, billing", str(config))
    without_file = run(*command, "--app", "billing")
    assert_one_line_error(without_file, "no app named 'billing'", "without a configuration file", "default")


def test_restart_of_one_app_pushes_into_its_redis_only(reported, redis_client, second_redis_client):
    result = run("restart", "--yes", "--config", str(reported), "--app", "billing")

    assert result.exit_code == 0, result.output
    assert "restarted 1, skipped 0" in result.stdout
    assert second_redis_client.llen("queue:q") == 1
    (pushed,) = [json.loads(item) for item in second_redis_client.lrange("queue:q", 0, -1)]
    assert pushed["args"] == ["billing"]
    assert redis_client.keys("*") == []  # the shop's Redis: nothing pushed
    uncompleted = run("jobs", "uncompleted", "--json", "--config", str(reported))
    assert [job["jid"] for job in json.loads(uncompleted.stdout)] == ["shop-lost"]


def test_a_read_of_a_ledger_claimed_by_another_app_fails_with_one_line(reported):
    # Without the file the one app is `default`, but DATABASE_URL's ledger is the shop's.
    result = run("jobs", "all")

    assert_one_line_error(result, "belongs to the app 'shop', not 'default'")


def test_job_manager_for_app_answers_for_that_app_and_the_environments_manager_is_the_defaults(
    reported, monkeypatch
):
    monkeypatch.setenv("SUPERVISOR_CONFIG", str(reported))

    billing = JobManager.for_app("billing")
    assert [job.jid for job in billing.all_jobs()] == BILLING_JIDS
    assert [job.jid for job in JobManager.from_environment().all_jobs()] == SHOP_JIDS
    assert [job.jid for job in JobManager.for_app().all_jobs()] == SHOP_JIDS
    # The seed's spelling: the package's JobManager, the default app's, and for_app on it.
    monkeypatch.setattr(sidekiq_supervisor, "_manager", None)  # built anew from this environment
    assert [job.jid for job in sidekiq_supervisor.JobManager.queued_jobs()] == ["same-jid", "shop-queued"]
    assert [job.jid for job in sidekiq_supervisor.JobManager.for_app("billing").all()] == BILLING_JIDS
    with pytest.raises(UnknownApp, match=r"no app named 'nope': .* are shop, billing") as raised:
        JobManager.for_app("nope")
    assert isinstance(raised.value, KeyError)
    monkeypatch.delenv("SUPERVISOR_CONFIG")
    explicit = JobManager.for_app("billing", config=reported)
    assert [job.jid for job in explicit.all_jobs()] == BILLING_JIDS


def test_serve_migrates_every_app_before_the_server_starts_and_hands_the_file_to_its_workers(
    env, tmp_path, monkeypatch
):
    config = tmp_path / "apps.toml"
    config.write_text(
        f'[apps.shop]\nredis_url = "{redis_test_url()}"\n\n'
        f'[apps.billing]\nredis_url = "{redis_test_url()}"\napi_tokens = ["b-t0ken"]\n'
    )
    seen: dict[str, object] = {}

    def server_started(*_args: object, **_kwargs: object) -> None:
        # uvicorn's server is the world here: what matters is what stands when it would start.
        apps = load_apps(Settings(database_url=env), config)
        for each in apps:
            engine = app_ledgers.open_app_ledger(apps, each)
            seen[each.name] = owner(engine)
            engine.dispose()
        seen["SUPERVISOR_CONFIG"] = os.environ.get("SUPERVISOR_CONFIG")

    monkeypatch.setattr(uvicorn, "run", server_started)
    monkeypatch.chdir(tmp_path)

    result = run("serve", "--host", "0.0.0.0", "--config", "apps.toml")

    assert result.exit_code == 0, result.output
    assert seen == {"shop": "shop", "billing": "billing", "SUPERVISOR_CONFIG": str(config.resolve())}
    # The open door is the shop's: billing has a token of its own.
    token_warnings = [line for line in result.stderr.splitlines() if "api_tokens for the app" in line]
    assert len(token_warnings) == 1 and "'shop'" in token_warnings[0]


@pytest.mark.slow  # a new Python process that imports everything: 1-2 s
def test_the_console_of_an_app_binds_its_manager_and_for_app_opens_the_others(reported):
    session = ["JobManager.all_jobs()", 'JobManager.for_app("shop").all_jobs()']
    completed = run_console(session, "--config", str(reported), "--app", "billing")

    assert "Traceback" not in completed.stdout + completed.stderr
    assert "JobManager is the app billing's" in completed.stderr  # the banner
    _, first, second = completed.stdout.split("┃ jid")  # two tables, in the order asked
    assert "billing-lost" in first and "shop" not in first  # the console's own JobManager: billing's
    assert "shop-lost" in second and "billing" not in second
