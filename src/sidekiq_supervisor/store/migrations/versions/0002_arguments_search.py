"""An index for the arguments filter (a case-insensitive substring of the arguments text).

- PostgreSQL: a pg_trgm GIN index on ``jobs.arguments``; ILIKE uses it for patterns of three or
  more characters and rechecks every candidate, so the filter's answers do not change.
- SQLite: ``jobs_search``, a contentless FTS5 table with the trigram tokenizer over the
  *casefolded* arguments (``casefold_text``, Python's ``str.casefold``, registered on every
  SQLite connection by ``store.text_search``), kept in step with ``jobs`` by triggers, so that a
  restart's DELETE leaves the index too. Folding before tokenizing makes the trigrams of a
  casefolded needle a subset of a matching row's trigrams, whatever Unicode's multi-character
  folds do (``ß`` → ``ss``); the filter still checks every candidate with ``contains_casefold``.
  ``detail=none`` keeps only rowids (no positions): the index is a third of the ``full`` size,
  and the query ANDs the needle's trigrams instead of matching a phrase.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SQLITE_UPGRADE = [
    "CREATE VIRTUAL TABLE jobs_search USING fts5("
    "arguments, content='', tokenize='trigram case_sensitive 1', detail=none)",
    "INSERT INTO jobs_search (rowid, arguments) SELECT id, casefold_text(arguments) FROM jobs",
    """CREATE TRIGGER jobs_search_insert AFTER INSERT ON jobs BEGIN
        INSERT INTO jobs_search (rowid, arguments) VALUES (new.id, casefold_text(new.arguments));
    END""",
    # A contentless table forgets a row only when told its indexed text again (its 'delete' command).
    """CREATE TRIGGER jobs_search_delete AFTER DELETE ON jobs BEGIN
        INSERT INTO jobs_search (jobs_search, rowid, arguments)
        VALUES ('delete', old.id, casefold_text(old.arguments));
    END""",
    # Arguments never change after the first report today; the trigger keeps the index right if they do.
    """CREATE TRIGGER jobs_search_update AFTER UPDATE OF id, arguments ON jobs BEGIN
        INSERT INTO jobs_search (jobs_search, rowid, arguments)
        VALUES ('delete', old.id, casefold_text(old.arguments));
        INSERT INTO jobs_search (rowid, arguments) VALUES (new.id, casefold_text(new.arguments));
    END""",
]
SQLITE_DOWNGRADE = [
    "DROP TRIGGER jobs_search_update",
    "DROP TRIGGER jobs_search_delete",
    "DROP TRIGGER jobs_search_insert",
    "DROP TABLE jobs_search",
]
POSTGRESQL_UPGRADE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    # A GIN build sorts its entries in this memory (default 64MB): more of it, fewer merge passes
    # over a large ledger. LOCAL: only for this migration's transaction.
    "SET LOCAL maintenance_work_mem = '256MB'",
    # The operator class in the extension's own schema: an app's ledger in a schema of its own
    # (sidekiq_supervisor.apps) has only that schema in its search path.
    "CREATE INDEX ix_jobs_arguments_trgm ON jobs USING gin (arguments {trgm}.gin_trgm_ops)",
]
EXTENSION_SCHEMA = "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'pg_trgm'"
# The extension stays: other objects of the database may use it.
POSTGRESQL_DOWNGRADE = ["DROP INDEX ix_jobs_arguments_trgm"]


def _run(statements: dict[str, list[str]]) -> None:
    bind = op.get_bind()
    for statement in statements[bind.dialect.name]:
        if "{trgm}" in statement:
            statement = statement.format(trgm=bind.exec_driver_sql(EXTENSION_SCHEMA).scalar_one())
        op.execute(statement)


def upgrade() -> None:
    _run({"sqlite": SQLITE_UPGRADE, "postgresql": POSTGRESQL_UPGRADE})


def downgrade() -> None:
    _run({"sqlite": SQLITE_DOWNGRADE, "postgresql": POSTGRESQL_DOWNGRADE})
