"""Many-row statements for the writer's hot path, handed to the database driver as they are.

SQLAlchemy Core writes these statements too, but its per-row parameter processing took about 3 µs
of the 5 µs that storing one event cost (500-event batches on SQLite). Here the SQL text is
assembled from column names the caller takes from ``store.schema``, and the rows go to the driver
as flat tuples. The SQL is the common subset SQLite (3.35 and later) and PostgreSQL both accept.
Only identifiers from our own schema are ever formatted into the text; values are always bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection

Row = tuple[Any, ...]


def insert_ignoring_conflicts(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    conflict: Sequence[str],
    returning: Sequence[str],
) -> list[Row]:
    """INSERT ``rows``, skipping those that collide on ``conflict``; the inserted rows' ``returning``."""
    values = _values(_marker(connection), len(columns), len(rows))
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values} "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {', '.join(returning)}"
    )
    return [tuple(row) for row in connection.exec_driver_sql(sql, tuple(chain.from_iterable(rows)))]


def select_where_in(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    key: str,
    keys: Sequence[Any],
    *,
    equal: tuple[str, Any] | None = None,
    order_by: str | None = None,
    lock: bool = False,
) -> list[Row]:
    """``columns`` of the rows whose ``key`` is one of ``keys`` (and ``equal``'s column has its value).

    ``lock`` takes row locks (FOR UPDATE) on PostgreSQL; SQLite's write transaction already
    excludes every other writer.
    """
    marker = _marker(connection)
    sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {key} IN ({', '.join([marker] * len(keys))})"
    parameters = list(keys)
    if equal is not None:
        sql += f" AND {equal[0]} = {marker}"
        parameters.append(equal[1])
    if order_by is not None:
        sql += f" ORDER BY {order_by}"
    if lock and connection.dialect.name == "postgresql":
        sql += " FOR UPDATE"
    return [tuple(row) for row in connection.exec_driver_sql(sql, tuple(parameters))]


def update_by_key(
    connection: Connection, table: Table, columns: Sequence[str], key: str, rows: Sequence[Row]
) -> None:
    """UPDATE ``columns`` of each row named by ``key``; every row is its new values, then its key."""
    marker = _marker(connection)
    assignments = ", ".join(f"{column} = {marker}" for column in columns)
    connection.exec_driver_sql(f"UPDATE {table.name} SET {assignments} WHERE {key} = {marker}", list(rows))


def _marker(connection: Connection) -> str:
    # pysqlite binds "?"; psycopg binds "%s".
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


@lru_cache(maxsize=256)
def _values(marker: str, width: int, count: int) -> str:
    row = f"({', '.join([marker] * width)})"
    return ", ".join([row] * count)
