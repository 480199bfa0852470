"""One process at a time for the background work that pushes jobs or sends notifications: a
PostgreSQL advisory lock per loop (recovery's, the alerts').

SQLite has one writer, and its processes share one file on one machine: there every process may
run the work, since each push is claimed in a write transaction first (``store.restarts``), as is
each alert, notice and delivery (``store.alerts``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

from sidekiq_supervisor.store.engine import lock_key

# The key of automatic recovery's lock (any fixed 64-bit number no other lock of ours uses).
RECOVERY_LOCK_KEY = 0x5349_4451_5245_4356  # "SIDQRECV"
# The alert loop's: one process evaluates the alerts and sends the notifications.
ALERTS_LOCK_KEY = 0x5349_4451_414C_5254  # "SIDQALRT"


@contextmanager
def leading(engine: Engine, key: int = RECOVERY_LOCK_KEY) -> Iterator[bool]:
    """Whether this process leads (holds the lock) for the ``with`` block; another holder: False."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = lock_key(engine, key)
    with engine.connect() as connection:
        got = bool(connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one())
        connection.commit()
        try:
            yield got
        finally:
            if got:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                connection.commit()
