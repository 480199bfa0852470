"""Choosing one of the configured apps by name, and opening its ledger: for the web app as it
starts, ``JobManager.for_app`` and the command line."""

from __future__ import annotations

from sqlalchemy import Engine

from sidekiq_supervisor.apps import AppConfig, Apps, ledger_schema, ledger_url
from sidekiq_supervisor.store.engine import make_engine
from sidekiq_supervisor.store.migrate import require_head, upgrade
from sidekiq_supervisor.store.ownership import check, claim, owner

# Connections kept open per app on PostgreSQL (as many more may open under load).
DEFAULT_APP_POOL = 10
OTHER_APP_POOL = 4


class UnknownApp(KeyError):
    """No configured app has the name asked for; the message lists the apps there are."""

    def __init__(self, name: str, apps: Apps) -> None:
        if apps.source is None:
            known = f"without a configuration file (SUPERVISOR_CONFIG) the one app is {apps.default.name!r}"
        else:
            known = f"the apps of {apps.source} are {', '.join(apps.names)}"
        self.message = f"no app named {name!r}: {known}"
        super().__init__(self.message)

    def __str__(self) -> str:
        # KeyError's own str() is the repr of its argument, quotes and all.
        return self.message


def choose_app(apps: Apps, name: str | None) -> AppConfig:
    """The app called ``name`` (None: the default app, the file's first), or :class:`UnknownApp`."""
    if name is None:
        return apps.default
    app = apps.get(name)
    if app is None:
        raise UnknownApp(name, apps)
    return app


def open_app_ledger(apps: Apps, app: AppConfig, *, migrate: bool = False) -> Engine:
    """An engine on ``app``'s ledger, checked to be at head and not another app's.

    With ``migrate`` (``serve`` and ``db upgrade``) the schema is created or migrated first and the
    ledger claimed for ``app``; without, nothing is written. Raises ``SchemaNotCurrent``,
    ``LedgerOfAnotherApp``, or SQLAlchemy's errors for a database out of reach.
    """
    engine = make_engine(
        ledger_url(app, apps.default),
        sqlite_synchronous=app.settings.sqlite_synchronous,
        schema=ledger_schema(app, apps.default),
        # On PostgreSQL, where every app's pool may share one server, only the default app keeps
        # today's (docs/scaling.md, "Many apps on one PostgreSQL").
        pool_size=DEFAULT_APP_POOL if app is apps.default else OTHER_APP_POOL,
    )
    try:
        if migrate:
            upgrade(engine)
            claim(engine, app.name)
        else:
            require_head(engine)
            check(owner(engine), app.name)
    except BaseException:
        engine.dispose()
        raise
    return engine
