"""Holding the ledger's write lock from outside, as a long migration, backup or rogue session would.

While it is held, the service's writer waits: requests are parked in the group-commit queue,
parsed and accepted but not answered. That makes "in flight" a state a test can hold for as long
as it needs, instead of a race against a fast commit.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from sqlalchemy.engine import make_url


@contextmanager
def write_lock(database_url: str) -> Iterator[None]:
    """Block every write to the ledger until the block ends (reads go on)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        # The writer begins with BEGIN IMMEDIATE; ours holds the RESERVED lock, WAL readers go on.
        connection = sqlite3.connect(url.database or "", isolation_level=None)
        try:
            connection.execute("BEGIN IMMEDIATE")
            yield
            connection.execute("ROLLBACK")
        finally:
            connection.close()
        return
    plain = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain) as connection:
        # EXCLUSIVE lets SELECTs through but makes the writer's INSERT into jobs wait.
        connection.execute("LOCK TABLE jobs IN EXCLUSIVE MODE")
        yield
        connection.rollback()
