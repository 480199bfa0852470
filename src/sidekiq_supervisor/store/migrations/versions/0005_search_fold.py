"""SQLite's search index folded as PostgreSQL's ILIKE folds (``domain.filters.fold_case``).

Migration 0002 indexed Python's ``str.casefold`` of the arguments (``ß`` as ``ss``); the filter now
ignores case one character at a time on both databases, so the trigrams are rebuilt from the
arguments folded that way. The triggers call the same ``casefold_text`` function, whose folding
changed with this revision. PostgreSQL's index is unchanged.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# A contentless FTS5 table forgets its rows only when told their indexed text, which 0002's folding
# produced and this one cannot reproduce: the table's own 'delete-all' command empties it.
REBUILD = [
    "INSERT INTO jobs_search (jobs_search) VALUES ('delete-all')",
    "INSERT INTO jobs_search (rowid, arguments) SELECT id, casefold_text(arguments) FROM jobs",
]


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for statement in REBUILD:
            op.execute(statement)


def downgrade() -> None:
    upgrade()  # the index follows whatever folding the running code registers
