"""Opening the ledger from the command line, with one clear line instead of a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from sidekiq_supervisor.apps import AppConfig, Apps, ConfigError, ledger_schema, ledger_url, load_apps
from sidekiq_supervisor.cli.failures import fail
from sidekiq_supervisor.services.app_ledgers import UnknownApp, choose_app, open_app_ledger
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.settings import Settings, masked_url
from sidekiq_supervisor.store.migrate import SchemaNotCurrent
from sidekiq_supervisor.store.ownership import LedgerOfAnotherApp


def shown_url(url: str) -> str:
    """The URL with any password masked, fit for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return masked_url(url)


def load_settings() -> Settings:
    """Settings from the environment, or exit naming the bad setting."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(_problem(error) for error in exc.errors())
        raise fail(f"invalid configuration: {problems}") from None


def _problem(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    where = ".".join(map(str, error["loc"]))
    return f"{where}: {message}" if where else message


def load_config(config: Path | None) -> Apps:
    """The apps of ``config`` (``--config``; else SUPERVISOR_CONFIG; without either, the one app
    ``default``), or exit with the one line naming the file's line and key at fault."""
    settings = load_settings()
    try:
        return load_apps(settings, config)
    except ConfigError as exc:
        raise fail(str(exc)) from None


def choose(config: Path | None, name: str | None) -> tuple[Apps, AppConfig]:
    """The apps and the one called ``name`` (``--app``; None: the default app), or exit naming the
    apps there are."""
    apps = load_config(config)
    try:
        return apps, choose_app(apps, name)
    except UnknownApp as exc:
        raise fail(str(exc), code=2) from None


def open_ledger(apps: Apps, app: AppConfig, *, migrate: bool = False) -> Engine:
    """An engine on ``app``'s ledger, at head and not another app's (brought to head and claimed
    with ``migrate``: only ``serve`` and ``db upgrade`` do), or exit with why it cannot be used."""
    # Named only when there is a choice of apps, so that a single app's messages stay as they were.
    which = "" if apps.source is None else f"app {app.name!r}: "
    url = shown_url(ledger_url(app, apps.default))
    try:
        return open_app_ledger(apps, app, migrate=migrate)
    except (SchemaNotCurrent, LedgerOfAnotherApp) as exc:
        raise fail(f"{which}{exc}") from None
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise fail(f"{which}DATABASE_URL {url!r} is not a usable URL ({exc})") from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise fail(f"{which}cannot open the database {url}: {reason}") from None


def ledger_place(apps: Apps, app: AppConfig) -> str:
    """Where ``app``'s ledger lives, fit for messages: its URL (password masked) and, on
    PostgreSQL, its schema when it has one of its own."""
    schema = ledger_schema(app, apps.default)
    url = shown_url(ledger_url(app, apps.default))
    return url if schema is None else f"{url}, schema {schema}"


def open_manager(config: Path | None = None, name: str | None = None) -> JobManager:
    """The JobManager of the app ``name`` (None: the default app) on its ledger and Redis, or a
    one-line exit."""
    apps, app = choose(config, name)
    return JobManager.from_settings(app.settings, open_ledger(apps, app))
