"""On PostgreSQL, ``job_events`` becomes a partitioned table, so that retention drops whole
days instead of deleting rows (``store/partitions.py``). SQLite keeps one table: a no-op there.

- ``job_events`` is partitioned by list of ``kind``: ``job_events_restarted`` holds the restart
  tombstones, which retention keeps and ingest looks up by jid for every batch (one small
  table to read, not one per day); ``job_events_by_day`` (its DEFAULT partition) all the rest.
- ``job_events_by_day`` is partitioned by range of ``at``: a partition a day from the oldest
  event of the last ``RECENT_DAYS`` days through ``AHEAD_DAYS`` days from now, one partition for
  everything older (if anything is), and ``job_events_default`` for the rest (a client's clock
  far ahead).

Every row is kept, with its id; the id sequence goes on where it was. In one transaction: the
old table is renamed, the partitioned one created with the old names, the rows copied, the keys
and indexes built, the old table dropped. PostgreSQL requires the partition keys in every unique
key: the dedup key (jid, kind, at) has them, the primary key becomes (id, kind, at).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from alembic import op
from sqlalchemy import text

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

DAY = 86_400 * 1_000_000
RECENT_DAYS = 62
AHEAD_DAYS = 7
COLUMNS = "id, jid, kind, at, recorded_at, detail"
TABLE = """CREATE TABLE {name} (
    id BIGINT NOT NULL DEFAULT nextval('job_events_id_seq'),
    jid VARCHAR(128) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    at BIGINT NOT NULL,
    recorded_at BIGINT NOT NULL,
    detail TEXT
){partitioning}"""


def _day(lower: int) -> str:
    return f"{datetime.fromtimestamp(lower / 1_000_000, UTC):%Y%m%d}"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    bind = op.get_bind()
    now = int(time.time() * 1_000_000)
    today = now // DAY * DAY
    op.execute("ALTER TABLE job_events RENAME TO job_events_0007")
    for old in ("pk_job_events", "uq_job_events_jid_kind_at"):
        op.execute(f"ALTER TABLE job_events_0007 RENAME CONSTRAINT {old} TO {old}_0007")
    op.execute("ALTER INDEX ix_job_events_kindid RENAME TO ix_job_events_kindid_0007")
    op.execute(TABLE.format(name="job_events", partitioning=" PARTITION BY LIST (kind)"))
    op.execute("ALTER SEQUENCE job_events_id_seq OWNED BY job_events.id")
    op.execute("CREATE TABLE job_events_restarted PARTITION OF job_events FOR VALUES IN ('restarted')")
    op.execute("CREATE TABLE job_events_by_day PARTITION OF job_events DEFAULT PARTITION BY RANGE (at)")

    oldest = bind.execute(
        text("SELECT min(at) FROM job_events_0007 WHERE at >= :since AND at < :until"),
        {"since": today - RECENT_DAYS * DAY, "until": today + (AHEAD_DAYS + 1) * DAY},
    ).scalar()
    first = min(today, oldest // DAY * DAY if oldest is not None else today)
    older = bind.execute(text("SELECT 1 FROM job_events_0007 WHERE at < :first LIMIT 1"), {"first": first})
    if older.first():
        op.execute(
            f"CREATE TABLE job_events_before_{_day(first)} PARTITION OF job_events_by_day"
            f" FOR VALUES FROM (MINVALUE) TO ({first})"
        )
    for lower in range(first, today + (AHEAD_DAYS + 1) * DAY, DAY):
        op.execute(
            f"CREATE TABLE job_events_p{_day(lower)} PARTITION OF job_events_by_day"
            f" FOR VALUES FROM ({lower}) TO ({lower + DAY})"
        )
    op.execute("CREATE TABLE job_events_default PARTITION OF job_events_by_day DEFAULT")

    # Copied before the keys exist: building an index once is cheaper than growing it per row.
    op.execute(f"INSERT INTO job_events ({COLUMNS}) SELECT {COLUMNS} FROM job_events_0007")
    op.execute("ALTER TABLE job_events ADD CONSTRAINT pk_job_events PRIMARY KEY (id, kind, at)")
    op.execute("ALTER TABLE job_events ADD CONSTRAINT uq_job_events_jid_kind_at UNIQUE (jid, kind, at)")
    op.execute("CREATE INDEX ix_job_events_kindid ON job_events (kind, id)")
    op.execute("DROP TABLE job_events_0007")
    op.execute("ANALYZE job_events")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE job_events RENAME TO job_events_0008")
    for old in ("pk_job_events", "uq_job_events_jid_kind_at"):
        op.execute(f"ALTER TABLE job_events_0008 RENAME CONSTRAINT {old} TO {old}_0008")
    op.execute("ALTER INDEX ix_job_events_kindid RENAME TO ix_job_events_kindid_0008")
    op.execute(TABLE.format(name="job_events", partitioning=""))
    op.execute("ALTER SEQUENCE job_events_id_seq OWNED BY job_events.id")
    op.execute(f"INSERT INTO job_events ({COLUMNS}) SELECT {COLUMNS} FROM job_events_0008")
    op.execute("ALTER TABLE job_events ADD CONSTRAINT pk_job_events PRIMARY KEY (id)")
    op.execute("ALTER TABLE job_events ADD CONSTRAINT uq_job_events_jid_kind_at UNIQUE (jid, kind, at)")
    op.execute("CREATE INDEX ix_job_events_kindid ON job_events (kind, id)")
    op.execute("DROP TABLE job_events_0008")  # and its partitions
    op.execute("ANALYZE job_events")
