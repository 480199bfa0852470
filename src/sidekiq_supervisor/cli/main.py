"""``sidekiq-supervisor``: serve the service, migrate, ask the seed's questions, restart jobs."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import sys
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from sidekiq_supervisor.apps import Apps
from sidekiq_supervisor.cli import output
from sidekiq_supervisor.cli.database import choose, ledger_place, load_config, open_ledger, open_manager
from sidekiq_supervisor.cli.failures import fail, reported_failures
from sidekiq_supervisor.domain.durations import DurationOrigin
from sidekiq_supervisor.domain.model import JobStatus, Selection
from sidekiq_supervisor.services.job_manager import JobManager

app = typer.Typer(
    help="Monitoring and recovery for Sidekiq jobs.", no_args_is_help=True, pretty_exceptions_enable=False
)
db_app = typer.Typer(help="The ledger's schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


Filter = Annotated[str | None, typer.Argument(help="Only jobs whose arguments contain this (any case).")]
Limit = Annotated[int, typer.Option(help="Show at most this many jobs, newest first; 0 for all.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print a JSON array for scripts.")]
JobClass = Annotated[str | None, typer.Option(help="Only jobs of this class.")]
Queue = Annotated[str | None, typer.Option(help="Only jobs of this queue.")]
# Every command that opens a ledger or a Sidekiq Redis takes these two.
ConfigFile = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        show_default=False,
        # Not checked by Typer: a missing file gets the same one line as a bad one.
        help="The TOML file of the Sidekiq apps (an apps.NAME table each), instead of SUPERVISOR_CONFIG.",
    ),
]
AppName = Annotated[
    str | None,
    typer.Option(
        "--app",
        metavar="NAME",
        show_default=False,
        help="The app whose ledger and Redis to use (default: the file's first app).",
    ),
]


def use_config_in_this_process(config: Path | None) -> None:
    """Make ``--config`` the SUPERVISOR_CONFIG of what this process starts next (uvicorn's workers,
    the console's ``JobManager.for_app``), which read the apps from the environment."""
    if config is not None:
        os.environ["SUPERVISOR_CONFIG"] = str(config.resolve())


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    config: ConfigFile = None,
) -> None:
    """Serve the HTTP service, every app's (each ledger's schema is created or migrated first)."""
    import uvicorn

    from sidekiq_supervisor.services.prometheus import multiprocess

    # Migrate once here, before uvicorn starts its workers: a bad database fails with one line,
    # and the workers (whose lifespans also migrate, for apps run without this command) find the
    # schema at head instead of racing to create it.
    apps = load_config(config)
    for each in apps:
        open_ledger(apps, each, migrate=True).dispose()
    if not is_loopback(host):
        _warn_of_open_doors(host, apps)
    use_config_in_this_process(config)
    raise_open_files_limit()
    # Several workers share /metrics' counts through files (prometheus_client's multi-process
    # mode): the directory is set before they start, so that each imports prometheus_client in it.
    with multiprocess.shared_directory_for(workers):
        uvicorn.run(
            "sidekiq_supervisor.web.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            access_log=False,
            # Request headers have a deadline (SUPERVISOR_HEADER_TIMEOUT_SECONDS); bodies are bounded
            # by the app itself.
            http="sidekiq_supervisor.web.http_protocol:HeaderTimeoutProtocol",
        )


def _warn_of_open_doors(host: str, apps: Apps) -> None:
    for each in apps:
        if each.api_tokens:
            continue
        whose, its = (
            ("", "") if apps.source is None else (f" nor api_tokens for the app {each.name!r}", "its ")
        )
        output.warn(
            f"listening on {host} with no SUPERVISOR_API_TOKEN{whose}: anyone who can reach this port "
            f"can read {its}job arguments and restart {its}jobs. Set SUPERVISOR_API_TOKEN (and the gem's "
            "token)."
        )
    if apps.settings.dashboard_credentials is None:
        output.warn(
            f"listening on {host} with no SUPERVISOR_USERNAME/SUPERVISOR_PASSWORD: the dashboard "
            "(/, /jobs, /durations, /restart) and /sidekiq are open to anyone who can reach this port, "
            "with job arguments and every action (restart; retry, delete and kill jobs; clear queues; "
            "quiet and stop processes). Set both to protect them."
        )


def raise_open_files_limit() -> None:
    """Raise this process's open-file limit to its hard limit (systemd's soft default is 1,024).

    Each connection holds a file descriptor: with 1,024, a thousand idle or slow clients left no
    room for anyone else (and for the database's files) until their deadlines passed.
    """
    try:
        import resource
    except ImportError:  # not on this platform
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for SUPERVISOR_SECRET_KEY (it encrypts the exact arguments of masked jobs)."""
    from sidekiq_supervisor.services.job_payloads import PayloadSeal

    print(PayloadSeal.new_key())


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname: it may resolve to anything


@db_app.command("upgrade")
def db_upgrade(config: ConfigFile = None, app_name: AppName = None) -> None:
    """Bring every app's ledger (with --app, that app's) to the newest schema revision."""
    from sidekiq_supervisor.store.migrate import current_revision

    apps, chosen = choose(config, app_name)
    for each in apps if app_name is None else [chosen]:
        engine = open_ledger(apps, each, migrate=True)
        try:
            done = f"schema at revision {current_revision(engine)}"
        finally:
            engine.dispose()
        # One app of its own: the line it always printed.
        typer.echo(done if apps.source is None else f"{each.name}: {done} ({ledger_place(apps, each)})")


@app.command()
def console(config: ConfigFile = None, app_name: AppName = None) -> None:
    """An interactive console with JobManager ready, like the seed's `rails c`."""
    from sidekiq_supervisor.cli.console import interact

    manager = open_manager(config, app_name)
    use_config_in_this_process(config)
    interact(manager, app_name)


@app.command()
def jobs(
    which: Annotated[Selection, typer.Argument(help="Which jobs (started and complete: aliases).")],
    filter: Filter = None,
    limit: Limit = 50,
    as_json: AsJson = False,
    job_class: JobClass = None,
    queue: Queue = None,
    config: ConfigFile = None,
    app_name: AppName = None,
) -> None:
    """List queued, uncompleted, completed or all jobs."""
    manager = open_manager(config, app_name)
    question = {
        JobStatus.QUEUED: manager.queued_jobs,
        JobStatus.STARTED: manager.uncompleted_jobs,
        JobStatus.COMPLETE: manager.completed_jobs,
        None: manager.all_jobs,
    }[which.status]
    with reported_failures():
        output.show(question(filter, job_class=job_class, queue=queue), limit=limit, as_json=as_json)


@app.command()
def durations(
    origin: Annotated[DurationOrigin, typer.Argument(help="From queued or from started, to completion.")],
    filter: Filter = None,
    limit: Limit = 50,
    as_json: AsJson = False,
    job_class: JobClass = None,
    queue: Queue = None,
    exact: Annotated[
        bool, typer.Option("--exact", help="Compute the summary from the jobs (slow at millions of jobs).")
    ] = False,
    config: ConfigFile = None,
    app_name: AppName = None,
) -> None:
    """Completed jobs with how long they took, and a summary (count, mean, p50, p95, p99, max).

    Without an arguments filter (of every class, a class, a queue or both) the summary comes from
    the roll-ups at once: percentiles estimated, at most 19% high; ``--exact`` computes it from
    the jobs."""
    manager = open_manager(config, app_name)
    question = (
        manager.queued_to_completion_duration
        if origin is DurationOrigin.QUEUED
        else manager.completed_jobs_duration
    )
    with reported_failures():
        output.show(
            question(filter, job_class=job_class, queue=queue), limit=limit, as_json=as_json, exact=exact
        )


@app.command()
def liveness(
    filter: Filter = None, as_json: AsJson = False, config: ConfigFile = None, app_name: AppName = None
) -> None:
    """Where each uncompleted job stands in Sidekiq: running, retrying, orphaned or unknown."""
    manager = open_manager(config, app_name)
    with reported_failures():
        report = manager.uncompleted_jobs_liveness(filter)
    output.show_liveness(report, as_json)


@app.command()
def recoveries(
    filter: Filter = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Show at most this many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per line.")] = False,
    config: ConfigFile = None,
    app_name: AppName = None,
) -> None:
    """What automatic recovery did (SUPERVISOR_AUTO_RECOVER): jobs pushed again, jobs quarantined."""
    manager = open_manager(config, app_name)
    try:
        with reported_failures():
            done = manager.recoveries(filter, limit)
    finally:
        manager.ledger.engine.dispose()
    output.show_recoveries(done, as_json)


@app.command()
def alerts(
    history: Annotated[int, typer.Option(min=1, max=1000, help="Show at most this many past alerts.")] = 20,
    messages: Annotated[
        int, typer.Option(min=0, max=1000, help="Show at most this many notifications.")
    ] = 10,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (as GET /api/v1/alerts).")
    ] = False,
    send_test: Annotated[
        bool,
        typer.Option("--send-test", help="Queue a test notification; the alert loop of `serve` sends it."),
    ] = False,
    config: ConfigFile = None,
    app_name: AppName = None,
) -> None:
    """Open alerts, their history and each notification's delivery (SUPERVISOR_NOTIFY)."""
    from sidekiq_supervisor.services.alerting import Alerter

    apps, chosen = choose(config, app_name)
    manager = JobManager.from_settings(chosen.settings, open_ledger(apps, chosen))
    try:
        # With several apps, the test message names its app, as the alert loop's messages do.
        alerter = Alerter.from_settings(manager, chosen.settings, app=chosen.name if len(apps) > 1 else None)
        if send_test:
            queued = alerter.notifier.queue_test()
            if queued is None:
                raise fail("no notification URL is configured (SUPERVISOR_NOTIFY)")
            typer.echo(f"test notification queued as message {queued}: `serve` sends it", err=True)
        view = alerter.view(history, messages)
    finally:
        manager.ledger.engine.dispose()
    output.show_alerts(view, as_json)


@app.command()
def restart(
    filter: Filter = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be restarted.")] = False,
    older_than: Annotated[
        float | None, typer.Option(help="Only jobs started more than this many seconds ago.")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="Decide jobs whose process may still be alive once it is taken for gone "
            "(up to SUPERVISOR_PROCESS_STALE_SECONDS), instead of skipping them.",
        ),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Restart everything without asking.")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print JSON lines: one per job as it is decided, then the counts.")
    ] = False,
    config: ConfigFile = None,
    app_name: AppName = None,
) -> None:
    """Queue uncompleted jobs again in Sidekiq, as they were pushed, and delete the originals."""
    manager = open_manager(config, app_name)
    everything = filter is None and older_than is None
    if everything and not dry_run and not yes and sys.stdin.isatty():
        count = len(manager.uncompleted_jobs())
        typer.confirm(
            f"No filter: restart every one of the {count:,} uncompleted jobs that no Sidekiq runs?",
            abort=True,
        )
    age = None if older_than is None else timedelta(seconds=older_than)
    outcomes = manager.restart_outcomes(filter, dry_run=dry_run, older_than=age, wait=wait)
    if as_json:
        output.stream_restart_lines(outcomes, dry_run)
        return
    with reported_failures():
        output.show_restart(outcomes, dry_run)


@app.command()
def prune(config: ConfigFile = None, app_name: AppName = None) -> None:
    """Delete what retention no longer keeps, now (serve also does it in the background)."""
    from sidekiq_supervisor.services.retention import Pruner

    apps, chosen = choose(config, app_name)
    engine = open_ledger(apps, chosen)
    pruner = Pruner.from_settings(engine, chosen.settings)
    with reported_failures():
        report = pruner.prune()
    typer.echo(f"deleted {report.jobs} completed jobs and {report.events} history events")
