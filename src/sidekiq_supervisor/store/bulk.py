"""Many-row statements for the writer's hot path, handed to the database driver as they are.

SQLAlchemy Core writes these statements too, but its per-row parameter processing took about 3 µs
of the 5 µs that storing one event cost (500-event batches on SQLite). Here the SQL text is
assembled from column names the caller takes from ``store.schema``, and the values are bound:

- on SQLite (3.35 and later), as a multi-row VALUES list of flat parameters;
- on PostgreSQL, as one array per column, unnested: a statement of a few parameters that the
  server parses quickly, where 2,500 separate parameters cost it milliseconds per batch.

Only identifiers from our own schema are ever formatted into the text. The statements go to the
connection's DBAPI cursor (``execute``), inside the caller's transaction, past SQLAlchemy's
per-statement work.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import String, Table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

Row = tuple[Any, ...]


def insert_ignoring_conflicts(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    conflict: Sequence[str],
    returning: Sequence[str],
    where: str | None = None,
) -> Sequence[Row]:
    """INSERT ``rows``, skipping those that collide on ``conflict``; the inserted rows' ``returning``.

    ``where``, an SQL condition over a new row's columns (named ``v.column``), inserts only the rows
    that meet it: a check that would otherwise take a statement of its own.
    """
    names = ", ".join(columns)
    source, parameters = _rows_source(connection, table, columns, rows)
    if where is None:
        head = f"INSERT INTO {table.name} ({names}) {source}"
    else:
        head = (
            f"WITH v ({names}) AS ({source}) "
            f"INSERT INTO {table.name} ({names}) SELECT {names} FROM v WHERE {where}"
        )
    sql = f"{head} ON CONFLICT ({', '.join(conflict)}) DO NOTHING RETURNING {', '.join(returning)}"
    return execute(connection, sql, parameters)


def insert_adding_on_conflict(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    conflict: Sequence[str],
) -> None:
    """INSERT ``rows``; one that collides on ``conflict`` adds its other columns to the stored row's
    (``count = count + excluded.count``), in the statement itself, so concurrent writers lose none."""
    added = [f"{c} = {table.name}.{c} + excluded.{c}" for c in columns if c not in conflict]
    insert_updating_on_conflict(connection, table, columns, rows, conflict=conflict, assignments=added)


def insert_updating_on_conflict(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Row],
    *,
    conflict: Sequence[str],
    assignments: Sequence[str],
) -> None:
    """INSERT ``rows``; one that collides on ``conflict`` updates the stored row by ``assignments``
    (SQL ``column = expression``, where ``excluded.column`` is the colliding row's value)."""
    source, parameters = _rows_source(connection, table, columns, rows)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) {source} "
        f"ON CONFLICT ({', '.join(conflict)}) DO UPDATE SET {', '.join(assignments)}"
    )
    execute(connection, sql, parameters)


def _rows_source(
    connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Row]
) -> tuple[str, tuple[Any, ...]]:
    """The rows as an INSERT's source and its parameters (see the module's docstring)."""
    if _is_postgresql(connection):
        return f"SELECT * FROM {_unnest(connection, table, columns)}", _columns_of(rows)
    return f"VALUES {_values(len(columns), len(rows))}", tuple(chain.from_iterable(rows))


def select_where_in(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    key: str,
    keys: Sequence[Any],
    *,
    order_by: str | None = None,
    lock: bool = False,
) -> Sequence[Row]:
    """``columns`` of the rows whose ``key`` is one of ``keys``.

    ``lock`` takes row locks (FOR UPDATE) on PostgreSQL; SQLite's write transaction already
    excludes every other writer.
    """
    postgresql = _is_postgresql(connection)
    marker = "%s" if postgresql else "?"
    members = f"= ANY({marker})" if postgresql else f"IN ({', '.join([marker] * len(keys))})"
    sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {key} {members}"
    parameters: list[Any] = [list(keys)] if postgresql else list(keys)
    if order_by is not None:
        sql += f" ORDER BY {order_by}"
    if lock and postgresql:
        sql += " FOR UPDATE"
    return execute(connection, sql, tuple(parameters))


def update_by_key(
    connection: Connection, table: Table, columns: Sequence[str], key: str, rows: Sequence[Row]
) -> None:
    """UPDATE ``columns`` of each row named by ``key``; every row is its new values, then its key.

    One statement joins the new values (UPDATE ... FROM, SQLite 3.33 and later): executemany
    made PostgreSQL parse and plan the UPDATE once per row.
    """
    names = [*columns, key]
    if _is_postgresql(connection):
        source, parameters = _unnest(connection, table, names), _columns_of(rows)
        value = {name: f"v.{name}" for name in names}
    else:
        # SQLite names a VALUES list's columns column1, column2...; they have no declared type.
        source = f"(VALUES {_values(len(names), len(rows))}) AS v"
        parameters = tuple(chain.from_iterable(rows))
        value = {name: f"v.column{position}" for position, name in enumerate(names, start=1)}
    assignments = ", ".join(f"{column} = {value[column]}" for column in columns)
    sql = f"UPDATE {table.name} SET {assignments} FROM {source} WHERE {table.name}.{key} = {value[key]}"
    execute(connection, sql, parameters)


def execute(connection: Connection, sql: str, parameters: Sequence[Any]) -> Sequence[Row]:
    """Run ``sql`` on the DBAPI cursor of ``connection``, in its transaction; the rows it returns.

    ``exec_driver_sql`` cost some 7 µs of the writer's 59 per report in SQLAlchemy's own work (a
    result object, its rows, events; ``bench/writer_cpu.py``'s groups of 32): about 20-25 µs for
    each of a group's eight to ten statements. A database error is raised as SQLAlchemy raises it
    (``sqlalchemy.exc.DBAPIError``'s subclass of the driver's error), and an error that means the
    connection is lost invalidates it, as SQLAlchemy does, so that the pool does not hand it out
    again.
    """
    proxied = connection.connection
    dbapi_error = connection.dialect.loaded_dbapi.Error
    cursor = proxied.cursor()
    try:
        cursor.execute(sql, parameters)
        return cursor.fetchall() if cursor.description is not None else []
    except dbapi_error as error:
        lost = connection.dialect.is_disconnect(error, proxied.dbapi_connection, cursor)
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sql, parameters, error, dbapi_error, connection_invalidated=lost, dialect=connection.dialect
        ) from error
    finally:
        with suppress(dbapi_error):
            cursor.close()


def _is_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def _unnest(connection: Connection, table: Table, columns: Sequence[str]) -> str:
    """``unnest(%s::type[], ...) AS v (columns)``: one array parameter per column."""
    arrays = ", ".join(f"%s::{_array_element(connection, table, column)}[]" for column in columns)
    return f"unnest({arrays}) AS v ({', '.join(columns)})"


def _array_element(connection: Connection, table: Table, column: str) -> str:
    column_type = table.c[column].type
    # An explicit cast to VARCHAR(n) truncates silently; from text, storing a value too long
    # for the column fails, as it must.
    return "text" if isinstance(column_type, String) else column_type.compile(dialect=connection.dialect)


def _columns_of(rows: Sequence[Row]) -> tuple[list[Any], ...]:
    return tuple(list(column) for column in zip(*rows, strict=True))


@lru_cache(maxsize=256)
def _values(width: int, count: int) -> str:
    row = f"({', '.join(['?'] * width)})"
    return ", ".join([row] * count)
