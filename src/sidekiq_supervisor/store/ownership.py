"""Which app a ledger belongs to: claimed by the first app that opens it, checked by every later
opening, so that two apps never share one ledger by mistake."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select, text

from sidekiq_supervisor.store.engine import write_transaction
from sidekiq_supervisor.store.schema import ledger_app


class LedgerOfAnotherApp(RuntimeError):
    """The ledger was claimed by another app than the one opening it."""


def owner(engine: Engine) -> str | None:
    """The app the ledger belongs to, or None before any app opened it."""
    with engine.connect() as connection:
        return connection.execute(select(ledger_app.c.name)).scalar()


def claim(engine: Engine, app: str) -> None:
    """Make the ledger ``app``'s if no app has it yet; raise :class:`LedgerOfAnotherApp` if
    another app's it is."""
    found = owner(engine)
    if found is None:
        with write_transaction(engine) as connection:
            if connection.dialect.name == "postgresql":
                # Two services started at once on a new ledger claim one after the other (SQLite's
                # write transaction already takes its lock at BEGIN).
                connection.execute(text("LOCK TABLE ledger_app IN SHARE ROW EXCLUSIVE MODE"))
            found = connection.execute(select(ledger_app.c.name)).scalar()
            if found is None:
                connection.execute(insert(ledger_app).values(name=app))
                return
    check(found, app)


def check(found: str | None, app: str) -> None:
    """Raise :class:`LedgerOfAnotherApp` unless ``found`` (a ledger's owner) is ``app`` or nobody."""
    if found is not None and found != app:
        raise LedgerOfAnotherApp(
            f"this ledger belongs to the app {found!r}, not {app!r}: give the app that name in the "
            "configuration file (the first app is the one of DATABASE_URL's ledger), or its own "
            "database_url"
        )
