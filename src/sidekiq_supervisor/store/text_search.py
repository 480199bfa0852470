"""The arguments filter in SQL: a case-insensitive substring match, the same on both databases.

PostgreSQL's ILIKE lowers one character at a time; migration 0002's pg_trgm GIN index serves
it (the planner rechecks every candidate, so the answers are ILIKE's).

SQLite's LIKE folds ASCII only, so on SQLite the match calls ``contains_casefold``, a function each
connection registers (see ``store.engine``), which folds with ``domain.filters.fold_case``, the
same one-character-at-a-time rule (so ``STRASSE`` finds ``straße`` on neither). A scan
calling it costs about half a microsecond a row, so for needles of three or more characters
(once folded) reads start from ``jobs_search`` (migrations 0002 and 0005: FTS5 trigrams of the
folded arguments), newest candidate first, and check only the rows holding every trigram of
the folded needle (see ``trigram_source``). Every row that matches holds those trigrams, so the
index never loses one; a candidate that merely holds the trigrams is dropped by the check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Integer, Table, column, literal, literal_column
from sqlalchemy import table as sql_table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.sql.selectable import FromClause, Join

from sidekiq_supervisor.domain.filters import LIKE_ESCAPE, fold_case, like_pattern

SQLITE_FUNCTION = "contains_casefold"
# The folding that migration 0002's triggers apply before the trigram tokenizer sees the text.
SQLITE_FOLD_FUNCTION = "casefold_text"
SEARCH_TABLE = "jobs_search"
TRIGRAM = 3


class contains_text(FunctionElement[bool]):  # noqa: N801 - SQL function naming
    """``haystack`` contains ``needle``, ignoring case."""

    type = Boolean()
    inherit_cache = True


def contains_ignoring_case(haystack: ColumnElement[str], needle: str) -> ColumnElement[bool]:
    """A condition: ``haystack`` contains ``needle`` (literally), ignoring case."""
    return contains_text(haystack, literal(needle), literal(like_pattern(needle)), literal(fold_case(needle)))


@dataclass(frozen=True, slots=True)
class TrigramSource:
    """Where a filtered read of ``jobs`` should look on SQLite: FTS5 candidates joined to their rows.

    Read ``FROM joined WHERE match AND ...`` and order by ``key`` (the candidates' rowid, which
    is ``jobs.id``): FTS5 hands its rowids out in either order, so a first page stops after
    enough matches instead of collecting every candidate of a common word.
    """

    joined: FromClause
    match: ColumnElement[bool]
    key: ColumnElement[int]


def trigram_source(dialect: str, table: Table, needle: str | None) -> TrigramSource | None:
    """The candidates of ``needle`` on SQLite, or ``None`` where no index serves it.

    PostgreSQL's planner uses its trigram index for ILIKE by itself; below three characters
    (once folded) no trigram exists and SQLite scans.
    """
    query = None if dialect != "sqlite" or needle is None else trigram_query(needle)
    if query is None:
        return None
    search = sql_table(SEARCH_TABLE, column("rowid", Integer))
    match = literal_column(SEARCH_TABLE).op("MATCH", is_comparison=True)(literal(query))
    joined = _CrossJoin(search, table, table.c.id == search.c.rowid)
    return TrigramSource(joined, match, search.c.rowid)


class _CrossJoin(Join):
    """A join whose left side SQLite must loop over first (its CROSS JOIN).

    Left to itself, SQLite's planner may loop over an index of ``jobs`` (by status, by class)
    and probe FTS5 with MATCH once per row: 93 s for one count at a million jobs.
    """

    inherit_cache = True


def trigram_query(needle: str) -> str | None:
    """An FTS5 query for rows holding every trigram needed to cover the casefolded ``needle``.

    Trigrams at every third position, plus the last, cover the needle: fewer terms to intersect
    than all of them, and the same candidates in practice (the check does the rest). ``None``
    when no trigram can be asked for: the needle is shorter than one once folded, or each of
    its trigrams holds a NUL, which ends an FTS5 query string (arguments are JSON text, which
    never holds a raw NUL).
    """
    folded = fold_case(needle)
    if len(folded) < TRIGRAM:
        return None
    starts = [*range(0, len(folded) - TRIGRAM + 1, TRIGRAM), len(folded) - TRIGRAM]
    trigrams = dict.fromkeys(folded[start : start + TRIGRAM] for start in starts)
    terms = ['"' + trigram.replace('"', '""') + '"' for trigram in trigrams if "\x00" not in trigram]
    return " AND ".join(terms) if terms else None


def casefold_contains(haystack: str | None, needle: str | None) -> bool:
    """The SQLite function behind the match."""
    return haystack is not None and needle is not None and fold_case(needle) in fold_case(haystack)


def casefold_text(text: str | None) -> str | None:
    """The SQLite function that folds the arguments before the trigram index sees them."""
    return None if text is None else fold_case(text)


@compiles(contains_text)
def _ilike(element: contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, _needle, pattern, _folded = element.clauses
    return compiler.process(haystack.ilike(pattern, escape=LIKE_ESCAPE), **kw)


@compiles(contains_text, "sqlite")
def _casefold(element: contains_text, compiler: SQLCompiler, **kw: Any) -> str:
    haystack, needle, _pattern, folded = element.clauses
    text, needle_sql = compiler.process(haystack, **kw), compiler.process(needle, **kw)
    # ASCII text (as many bytes as characters) is folded by SQLite's lower(), which changes A-Z
    # alone, as fold_case does to ASCII, and searched for the needle folded in Python. Only other
    # text calls the Python function: a call takes the interpreter's lock, once per row, from a
    # reading thread, which then competes with the event loop and the writer for it.
    ascii_only = f"length(CAST({text} AS BLOB)) = length({text})"
    in_sqlite = f"instr(lower({text}), {compiler.process(folded, **kw)}) > 0"
    return f"CASE WHEN {ascii_only} THEN {in_sqlite} ELSE {SQLITE_FUNCTION}({text}, {needle_sql}) END"


@compiles(_CrossJoin, "sqlite")
def _cross_join(element: _CrossJoin, compiler: SQLCompiler, **kw: Any) -> str:
    # The left side is the FTS table, a bare name: its first " JOIN " is this join's keyword.
    # SQLAlchemy leaves SQLCompiler.visit_join unannotated (it returns the join's SQL text).
    joined: str = compiler.visit_join(element, **kw)  # type: ignore[no-untyped-call]
    return joined.replace(" JOIN ", " CROSS JOIN ", 1)
