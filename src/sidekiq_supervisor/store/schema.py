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
    text,
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
    # The queue filter of the lists and counts (0014): written once per job, as a job's queue
    # never changes.
    Index(None, "queue", "id"),
    # Counts of one class's jobs of a status, from index entries alone (0011).
    Index("ix_jobs_job_class_status", "job_class", "status"),
    # Uncompleted jobs by start, oldest first (the overview's long-running jobs, the alerts): the
    # few running jobs only, so completed ones cost the index nothing.
    Index(
        "ix_jobs_started_at_uncompleted",
        "started_at",
        sqlite_where=text("status = 'started'"),
        postgresql_where=text("status = 'started'"),
    ),
)

# The events of automatic recovery: what it quarantined, and the restarts it made (their detail
# says "recovered"). An index holds these alone; a query states this same text to be served by it.
RECOVERY_EVENTS = "kind = 'quarantined' OR (kind = 'restarted' AND detail LIKE '%\"recovered\"%')"

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
    # The rare kinds newest first (restarted, quarantined).
    Index(None, "kind", "id"),
    # The events of automatic recovery alone, newest first (the recoveries list, 0015).
    Index(
        "ix_job_events_recoveries",
        "id",
        sqlite_where=text(RECOVERY_EVENTS),
        postgresql_where=text(RECOVERY_EVENTS),
    ),
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

duration_rollups = Table(
    "duration_rollups",
    metadata,
    # Completed jobs' durations, counted as each completion is stored (domain.rollups): per period
    # (grain "hour", "day" or "all" of the kept jobs, from ``start``; "pruned", the jobs retention
    # deleted), class, queue and origin, the count, sum and maximum and the histogram (JSON
    # {bucket: count}, domain.histogram). Jobs pruned before 0012 have the queue "" (unknown).
    # The key joins grain, start, origin, class and queue (RollupKey.text): one column for the
    # writer's bulk statements, long enough for a class and a queue of 255 characters each.
    Column("key", String(600), primary_key=True),
    Column("grain", String(8), nullable=False),
    Column("start", BigInteger, nullable=False),
    Column("job_class", String(255), nullable=False),
    Column("queue", String(255), nullable=False),
    Column("origin", String(8), nullable=False),
    Column("count", BigInteger, nullable=False),
    Column("total_micros", BigInteger, nullable=False),
    Column("max_micros", BigInteger, nullable=False),
    Column("histogram", Text, nullable=False),
    # The pages' windows: a grain's periods from a start on.
    Index(None, "grain", "start"),
)

event_counts = Table(
    "event_counts",
    metadata,
    # Reports per minute of their time and kind, counted as they are stored: the overview's chart
    # reads minutes, not the history. Trimmed after a week.
    Column("minute", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("minute", "kind"),
)

job_counts = Table(
    "job_counts",
    metadata,
    # Jobs per class, queue and status, kept by every write that creates, moves or deletes a job
    # (store.job_counts): the lists' counts and the dashboard's figures sum these rows.
    Column("job_class", String(255), nullable=False),
    Column("queue", String(255), nullable=False),
    Column("status", String(16), nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("job_class", "queue", "status"),
)

alerts = Table(
    "alerts",
    metadata,
    # One row per alert (domain.alerts): open while resolved_at is NULL, then history. Newest first
    # by id.
    Column("id", Id, primary_key=True, autoincrement=True),
    # condition:subject, the alert's identity; condition and subject also apart, for people.
    Column("key", String(320), nullable=False),
    Column("condition", String(32), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("opened_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # When the condition was first absent since it was last found (it resolves after a hold).
    Column("clear_since", BigInteger),
    Column("resolved_at", BigInteger),
    # The figures of the last pass that found it: how many, in words, and a few jids (JSON).
    Column("count", BigInteger, nullable=False),
    Column("summary", Text, nullable=False),
    Column("sample", Text, nullable=False),
    # The messages that told it fired and resolved; NULL while that notice waits.
    Column("fired_message_id", BigInteger),
    Column("resolved_message_id", BigInteger),
    # At most one open alert per key: two processes (SQLite) opening the same one insert once.
    Index(
        None,
        "key",
        unique=True,
        sqlite_where=text("resolved_at IS NULL"),
        postgresql_where=text("resolved_at IS NULL"),
    ),
)

alert_messages = Table(
    "alert_messages",
    metadata,
    # One row per message: notices told together (kind "alerts", counted by the rate limit), or a
    # test someone asked for (kind "test").
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("created_at", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    # The rate limit reads the messages of its window.
    Index(None, "kind", "created_at"),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    # One message to one notification URL: its status (domain.alerts.DeliveryStatus), tries and
    # the last error. The URL itself is never stored: a hash names it, and ``target`` shows it
    # with its secrets masked.
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("message_id", BigInteger, nullable=False),
    Column("target_key", String(64), nullable=False),
    Column("target", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    # When a pending delivery is tried next, or when a claimed one ("sending") may be taken over.
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("last_attempt_at", BigInteger),
    Column("sent_at", BigInteger),
    Column("error", Text),
    # The deliveries due: status pending or sending, by time.
    Index(None, "status", "next_attempt_at"),
    # A message's deliveries, for the Alerts page.
    Index(None, "message_id"),
)

ledger_app = Table(
    "ledger_app",
    metadata,
    # The app whose ledger this is (one row): a configuration that points another app at it, say
    # by reordering the apps of the file, is refused instead of mixing two apps' jobs.
    Column("name", String(63), nullable=False),
    PrimaryKeyConstraint("name", name="pk_ledger_app"),
)
