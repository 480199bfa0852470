"""Tables of the ledger. Each index names the query it serves.

Times are BIGINT epoch microseconds (see ``domain.model``), which keeps duration maths a plain
subtraction on both SQLite and PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Named constraints keep Alembic migrations stable across SQLite batch mode and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (auto-incrementing); BIGINT elsewhere.
Id = BigInteger().with_variant(Integer(), "sqlite")

jobs = Table(
    "jobs",
    metadata,
    # Insertion order: keyset pagination walks it newest first.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("jid", String(128), nullable=False, unique=True),
    Column("job_class", String(255), nullable=False),
    Column("queue", String(255), nullable=False),
    Column("arguments", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("queued_at", BigInteger),
    Column("started_at", BigInteger),
    Column("completed_at", BigInteger),
    Column("attempts", Integer, nullable=False, default=0),
    Column("restarted_from", String(128)),
    # JSON of the worker (Sidekiq process identity, hostname, pid, thread) of the latest start.
    Column("worker", Text),
    # Lists by status, newest first: queued_jobs, uncompleted_jobs, completed_jobs.
    Index(None, "status", "id"),
    # The job_class filter of the lists and the per-class duration views.
    Index(None, "job_class", "id"),
)

job_events = Table(
    "job_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("jid", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("recorded_at", BigInteger, nullable=False),
    # JSON details of the event, e.g. the new jid of a restart.
    Column("detail", Text),
    # One row per distinct report: a resent report collides here and changes nothing. It also
    # serves a job's timeline (WHERE jid = ? ORDER BY at).
    UniqueConstraint("jid", "kind", "at"),
    # The rare kinds newest first (the recoveries list: restarted, quarantined).
    Index(None, "kind", "id"),
)

job_payloads = Table(
    "job_payloads",
    metadata,
    # What a restart needs of a job's Sidekiq payload beyond its class, queue and arguments
    # (domain.payload): "plain" keys as JSON, the whole payload "sealed" (encrypted), or
    # "withheld" (secret, and no key to keep it). A job with nothing more has no row. Kept apart
    # from ``jobs`` so that lists never read it; the first report that carries it wins.
    Column("jid", String(128), primary_key=True),
    Column("form", String(8), nullable=False),
    Column("payload", Text),
)

job_rollups = Table(
    "job_rollups",
    metadata,
    # What retention keeps of the completed jobs it deletes: per class, origin ("queued" or
    # "started", the seed's two questions) and hour of completion, the count, the sum and the
    # maximum of the durations, and their histogram (JSON {bucket: count}, domain.histogram).
    Column("job_class", String(255), nullable=False),
    Column("origin", String(8), nullable=False),
    Column("hour", BigInteger, nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("total_micros", BigInteger, nullable=False),
    Column("max_micros", BigInteger, nullable=False),
    Column("histogram", Text, nullable=False),
    # One row per key; long-range summaries read a class's hours in order.
    PrimaryKeyConstraint("job_class", "origin", "hour"),
)
