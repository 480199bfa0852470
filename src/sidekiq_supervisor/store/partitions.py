"""The partitions of ``job_events`` on PostgreSQL (migration 0008; SQLite keeps one table).

``job_events`` is partitioned by list of ``kind``: ``job_events_restarted`` holds the restart
tombstones (retention keeps them; ingest looks them up by jid for every batch, in that one small
table), and ``job_events_by_day`` all the rest, partitioned by range of ``at``, the report's own
time. The dedup key (jid, kind, at) must hold the partition keys, and ``recorded_at`` (the time
retention cuts by) would make a resent report a new row. Reports arrive seconds after they
happen, so a day of ``at`` is in practice a day of ``recorded_at``; the few that are not are
looked at one by one below.

- ``job_events_pYYYYMMDD`` holds one UTC day. :func:`ensure_partitions` creates today's and the
  next ``AHEAD_DAYS`` (at ``serve`` start and ``db upgrade``, and in every retention pass);
  it is idempotent.
- ``job_events_default`` (the DEFAULT partition of the days) catches every ``at`` without a
  partition: a client's clock in 1970 or 2400, a day nobody created yet. A report is never
  refused for its time. Creating a day's partition moves that day's rows out of it first.
- Retention (:func:`drop_partition`) drops a day once all of its range is older than the
  cutoff; the reports received after the cutoff (whatever their ``at``) are moved to the
  DEFAULT partition first. The DEFAULT partition, small, is pruned row by row as before.

Every change here runs in its own short transaction with a lock timeout, so that ingest never
waits long for it; one that cannot get its locks is tried again by the next pass.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, column, table, text

from sidekiq_supervisor.domain.model import Micros
from sidekiq_supervisor.store.engine import lock_key

logger = logging.getLogger(__name__)

DAY_MICROS = 86_400 * 1_000_000
# Today's partition and this many days' after it exist once a maintenance step has run.
AHEAD_DAYS = 7
BY_DAY = "job_events_by_day"
DEFAULT_PARTITION = "job_events_default"
# How long a maintenance step waits for a lock before giving up until the next one. Statements
# on job_events queue behind a waiting DETACH (or the DEFAULT partition's lock), so this bounds
# how long a long-running read can make ingest wait through it.
LOCK_TIMEOUT = "1s"
# Names the lock that makes creating and dropping partitions take turns across processes, so that
# their table locks never meet in the opposite order (any constant works).
PARTITIONS_LOCK_KEY = 0x5041_5254_5300
# PostgreSQL's SQLSTATE for a lock not obtained within lock_timeout.
LOCK_NOT_AVAILABLE = "55P03"

# The DEFAULT partition, for the row-by-row retention of what falls outside the daily ones.
default_partition = table(
    DEFAULT_PARTITION, column("id"), column("jid"), column("kind"), column("at"), column("recorded_at")
)

_BOUND = re.compile(r"FOR VALUES FROM \((.+)\) TO \((.+)\)")


@dataclass(frozen=True, slots=True)
class Partition:
    """One range partition of ``job_events``: ``at`` in [lower, upper); ``None`` is unbounded."""

    name: str
    lower: Micros | None
    upper: Micros | None


def is_partitioned(connection: Connection) -> bool:
    """Whether ``job_events`` is a partitioned table here (PostgreSQL at 0008 or later)."""
    if connection.dialect.name != "postgresql":
        return False
    kind = connection.execute(text("SELECT relkind FROM pg_class WHERE oid = to_regclass('job_events')"))
    return kind.scalar() == "p"


def _bound(value: str) -> Micros | None:
    value = value.strip().strip("'")
    return None if value in ("MINVALUE", "MAXVALUE") else int(value)


def range_partitions(connection: Connection) -> list[Partition]:
    """The range partitions of ``job_events_by_day`` (not the DEFAULT one), by lower bound."""
    rows = connection.execute(
        text(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            f" JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '{BY_DAY}'::regclass"
        )
    ).all()
    found = []
    for name, bound in rows:
        match = _BOUND.match(bound)
        if match:
            found.append(Partition(name, _bound(match[1]), _bound(match[2])))
    return sorted(found, key=lambda p: (p.lower is not None, p.lower or 0))


def day_name(lower: Micros) -> str:
    """The name of the daily partition that starts at ``lower`` (UTC midnight)."""
    return f"job_events_p{datetime.fromtimestamp(lower / 1_000_000, UTC):%Y%m%d}"


def _overlaps(partition: Partition, lower: Micros, upper: Micros) -> bool:
    return (partition.lower is None or partition.lower < upper) and (
        partition.upper is None or lower < partition.upper
    )


def _lock_partitions(connection: Connection) -> None:
    key = lock_key(connection.engine, PARTITIONS_LOCK_KEY)
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def _limit_waits(connection: Connection) -> None:
    connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


def create_day(connection: Connection, lower: Micros) -> str | None:
    """Create the partition of the day starting at ``lower`` (in the caller's transaction),
    taking that day's rows out of the DEFAULT partition into it; its name, or ``None`` when a
    partition already covers some of that day."""
    name, upper = day_name(lower), lower + DAY_MICROS
    _lock_partitions(connection)
    if any(_overlaps(p, lower, upper) for p in range_partitions(connection)):
        return None  # another process made it meanwhile
    _limit_waits(connection)
    # Nothing may enter that day of the DEFAULT partition between the move and the attach.
    connection.execute(text(f"LOCK TABLE {DEFAULT_PARTITION} IN ACCESS EXCLUSIVE MODE"))
    connection.execute(text(f"CREATE TABLE {name} (LIKE {BY_DAY} INCLUDING DEFAULTS)"))
    connection.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE at >= :lower AND at < :upper"
            f" RETURNING id, jid, kind, at, recorded_at, detail) INSERT INTO {name}"
            " (id, jid, kind, at, recorded_at, detail) SELECT * FROM moved"
        ),
        {"lower": lower, "upper": upper},
    )
    # Attaching builds the table's indexes and unique keys from job_events' own.
    bounds = f"FOR VALUES FROM ({lower}) TO ({upper})"
    connection.execute(text(f"ALTER TABLE {BY_DAY} ATTACH PARTITION {name} {bounds}"))
    return name


def ensure_partitions(engine: Engine, now: Micros, ahead_days: int = AHEAD_DAYS) -> list[str]:
    """Create the daily partitions of today and the next ``ahead_days`` that are missing; the
    names created. A no-op on SQLite and when they all exist."""
    with engine.connect() as connection:
        if not is_partitioned(connection):
            return []
        existing = range_partitions(connection)
    today = now // DAY_MICROS * DAY_MICROS
    created = []
    for day in range(ahead_days + 1):
        lower = today + day * DAY_MICROS
        if any(_overlaps(p, lower, lower + DAY_MICROS) for p in existing):
            continue
        with engine.begin() as connection:
            name = create_day(connection, lower)
        if name is not None:
            created.append(name)
    return created


def ensure_partitions_quietly(engine: Engine, now: Micros) -> list[str]:
    """:func:`ensure_partitions`, logging instead of raising: a missing partition costs nothing
    but a fuller DEFAULT partition, so it must never stop a start or a retention pass."""
    try:
        return ensure_partitions(engine, now)
    except Exception:
        logger.warning("could not create the upcoming partitions of job_events; will retry", exc_info=True)
        return []


def lock_not_available(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL giving up on a lock after ``LOCK_TIMEOUT``."""
    return getattr(getattr(exc, "orig", None), "sqlstate", None) == LOCK_NOT_AVAILABLE


def droppable(connection: Connection, cutoff: Micros) -> list[Partition]:
    """The range partitions whose whole range is older than ``cutoff``, oldest first."""
    return [p for p in range_partitions(connection) if p.upper is not None and p.upper <= cutoff]


def drop_partition(connection: Connection, partition: Partition, cutoff: Micros) -> int:
    """Drop ``partition`` (in the caller's transaction), keeping in the DEFAULT partition the
    reports received at or after ``cutoff`` (restart tombstones are never in a day's partition).
    Returns how many events went."""
    name = partition.name
    attached = text(
        f"SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(:name) AND inhparent = '{BY_DAY}'::regclass"
    )
    _lock_partitions(connection)
    if connection.execute(attached, {"name": name}).first() is None:
        return 0  # another process dropped it meanwhile
    _limit_waits(connection)
    connection.execute(text(f"ALTER TABLE {BY_DAY} DETACH PARTITION {name}"))
    total = connection.execute(text(f"SELECT count(*) FROM {name}")).scalar_one()
    # Its range has no partition now: these land in the DEFAULT one.
    kept = connection.execute(
        text(
            "INSERT INTO job_events (id, jid, kind, at, recorded_at, detail)"
            f" SELECT id, jid, kind, at, recorded_at, detail FROM {name} WHERE recorded_at >= :cutoff"
        ),
        {"cutoff": cutoff},
    ).rowcount
    connection.execute(text(f"DROP TABLE {name}"))
    return int(total) - kept
