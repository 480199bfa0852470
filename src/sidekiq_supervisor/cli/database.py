"""Opening the ledger from the command line, with one clear line instead of a traceback."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from sidekiq_supervisor.cli.failures import fail
from sidekiq_supervisor.services.job_manager import JobManager
from sidekiq_supervisor.settings import Settings, masked_url
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import SchemaNotCurrent, require_head, upgrade


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


def open_database(settings: Settings, *, migrate: bool = False) -> Engine:
    """An engine on a schema at head (brought there with ``migrate``: only ``serve`` and
    ``db upgrade`` do), or exit with why the database cannot be used."""
    try:
        engine = make_engine(settings.database_url, sqlite_synchronous=settings.sqlite_synchronous)
        if migrate:
            upgrade(engine)
        else:
            require_head(engine)
    except SchemaNotCurrent as exc:
        raise fail(str(exc)) from None
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise fail(f"DATABASE_URL {shown_url(settings.database_url)!r} is not a usable URL ({exc})") from None
    except SQLAlchemyError as exc:
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        raise fail(f"cannot open the database {shown_url(settings.database_url)}: {reason}") from None
    return engine


def open_manager() -> JobManager:
    """The JobManager of the environment's settings, or a one-line exit."""
    settings = load_settings()
    return JobManager.from_settings(settings, open_database(settings))
