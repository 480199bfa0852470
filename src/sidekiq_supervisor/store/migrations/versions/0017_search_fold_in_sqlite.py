"""SQLite's search triggers fold ASCII arguments with SQLite's own ``lower()``.

The triggers of migration 0002 called ``casefold_text`` (a Python function) for every job
written. Called from inside the writer's statement, such a function has to take the
interpreter's lock once per row, and it waits there behind the event loop, which holds the lock
while it serves requests: under seed-shaped ingest the writer thread spent about a fifth of its
time waiting in those calls (docs/performance.md).

Text whose length in bytes equals its length in characters is ASCII (arguments are valid UTF-8
and JSON, so they hold no NUL). For ASCII, SQLite's ``lower()`` changes ``A``-``Z`` alone, which
is exactly what ``domain.filters.fold_case`` does to ASCII; any other text still goes to
``casefold_text``. The indexed text is the same either way, so the index is not rebuilt, and a
row indexed by the old triggers is forgotten by the new ones with the same text.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05
"""

from __future__ import annotations

from collections.abc import Callable

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


FOLD_FUNCTION = "casefold_text"


def folded_in_sqlite(value: str) -> str:
    """SQL for ``value`` folded for the index: by SQLite when ASCII, else by the Python function."""
    ascii_only = f"length(CAST({value} AS BLOB)) = length({value})"
    return f"CASE WHEN {ascii_only} THEN lower({value}) ELSE {FOLD_FUNCTION}({value}) END"


def folded_in_python(value: str) -> str:
    """SQL for ``value`` folded for the index by the Python function alone (0002's triggers)."""
    return f"{FOLD_FUNCTION}({value})"


def triggers(folded: Callable[[str], str]) -> list[str]:
    """The three triggers that keep ``jobs_search`` in step with ``jobs``, folding by ``folded``."""
    old, new = folded("old.arguments"), folded("new.arguments")
    return [
        f"""CREATE TRIGGER jobs_search_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO jobs_search (rowid, arguments) VALUES (new.id, {new});
    END""",
        f"""CREATE TRIGGER jobs_search_delete AFTER DELETE ON jobs BEGIN
        INSERT INTO jobs_search (jobs_search, rowid, arguments) VALUES ('delete', old.id, {old});
    END""",
        f"""CREATE TRIGGER jobs_search_update AFTER UPDATE OF id, arguments ON jobs BEGIN
        INSERT INTO jobs_search (jobs_search, rowid, arguments) VALUES ('delete', old.id, {old});
        INSERT INTO jobs_search (rowid, arguments) VALUES (new.id, {new});
    END""",
    ]


def _replace_triggers(folded: Callable[[str], str]) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL's trigram index needs no trigger
    for name in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER jobs_search_{name}")
    for statement in triggers(folded):
        op.execute(statement)


def upgrade() -> None:
    _replace_triggers(folded_in_sqlite)


def downgrade() -> None:
    _replace_triggers(folded_in_python)
