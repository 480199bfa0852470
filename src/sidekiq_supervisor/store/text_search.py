"""The arguments filter in SQL: a case-insensitive substring match that folds all of Unicode.

PostgreSQL's ILIKE folds case by the database's locale. SQLite's LIKE folds ASCII only, so on
SQLite the match calls ``contains_casefold``, a function each connection registers (see
``store.engine``), which folds with Python's ``str.casefold``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, literal
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from sidekiq_supervisor.domain.filters import LIKE_ESCAPE, like_pattern

SQLITE_FUNCTION = "contains_casefold"


class contains_text(FunctionElement[bool]):  # noqa: N801 - SQL function naming
    """``haystack`` contains ``needle``, ignoring case."""

    type = Boolean()
    inherit_cache = True


def contains_ignoring_case(haystack: ColumnElement[str], needle: str) -> ColumnElement[bool]:
    """A condition: ``haystack`` contains ``needle`` (literally), ignoring case."""
    return contains_text(haystack, literal(needle), literal(like_pattern(needle)))  # type: ignore[return-value]


def casefold_contains(haystack: str | None, needle: str | None) -> bool:
    """The SQLite function behind the match."""
    return haystack is not None and needle is not None and needle.casefold() in haystack.casefold()


@compiles(contains_text)
def _ilike(element: contains_text, compiler: Any, **kw: Any) -> str:
    haystack, _needle, pattern = element.clauses
    return compiler.process(haystack.ilike(pattern, escape=LIKE_ESCAPE), **kw)


@compiles(contains_text, "sqlite")
def _casefold(element: contains_text, compiler: Any, **kw: Any) -> str:
    haystack, needle, _pattern = element.clauses
    return f"{SQLITE_FUNCTION}({compiler.process(haystack, **kw)}, {compiler.process(needle, **kw)})"
