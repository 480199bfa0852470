"""Summaries kept as reports are stored: ``duration_rollups`` (every kept completed job's durations
per class, origin and hour, day and all time, and the deleted ones' per class) and
``event_counts`` (reports per minute and kind).

The pages, the API and the console read their duration summaries and the overview's chart from
them instead of the whole history (``docs/performance.md``, "Reads beside ingest"). The upgrade
counts the jobs and events already stored: the completed jobs in id order, a chunk at a time, and
the last eight days of events. The hourly roll-ups of deleted jobs (``job_rollups``, 0003) become
one ``pruned`` row per class and origin; a downgrade puts those back as rows of hour 0.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sidekiq_supervisor.domain import rollups
from sidekiq_supervisor.store.rollup_counts import added, count_kept_jobs, pruned_key, rollup_row, tally_of

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MINUTE = 60_000_000
COUNTED_EVENTS_FOR = 8 * 24 * 60 * MINUTE


def upgrade() -> None:
    rollup_table = op.create_table(
        "duration_rollups",
        sa.Column("key", sa.String(300), nullable=False),
        sa.Column("grain", sa.String(8), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("job_class", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total_micros", sa.BigInteger(), nullable=False),
        sa.Column("max_micros", sa.BigInteger(), nullable=False),
        sa.Column("histogram", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_duration_rollups"),
    )
    op.create_index("ix_duration_rollups_grain_start", "duration_rollups", ["grain", "start"])
    op.create_index(
        "ix_jobs_started_at_uncompleted",
        "jobs",
        ["started_at"],
        sqlite_where=sa.text("status = 'started'"),
        postgresql_where=sa.text("status = 'started'"),
    )
    op.create_table(
        "event_counts",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "kind", name="pk_event_counts"),
    )
    # Per class: every job counts under the one unknown queue, as this revision's table has none.
    tallies = count_kept_jobs(op.get_bind(), by_queue=False)
    tallies.update(_pruned_jobs())
    rows = [
        rollup_row(key, tally, by_queue=False) for key, tally in sorted(tallies.items()) if tally.count > 0
    ]
    for start in range(0, len(rows), 1000):
        op.bulk_insert(rollup_table, rows[start : start + 1000])
    op.drop_table("job_rollups")
    _count_recent_events()


def _pruned_jobs() -> dict[rollups.RollupKey, rollups.Tally]:
    """0003's hourly roll-ups of deleted jobs, one tally per class and origin."""
    query = "SELECT job_class, origin, count, total_micros, max_micros, histogram FROM job_rollups"
    return added(
        {},
        (
            (pruned_key(job_class, origin), tally_of(count, total, longest, histogram))
            for job_class, origin, count, total, longest, histogram in op.get_bind().exec_driver_sql(query)
        ),
    )


def _count_recent_events() -> None:
    connection = op.get_bind()
    newest = connection.execute(sa.text("SELECT max(at) FROM job_events")).scalar()
    if newest is None:
        return
    # Integer division on both databases (the columns are BIGINT); minutes before 1970 are not
    # worth the floor-versus-truncation difference.
    op.execute(
        sa.text(
            "INSERT INTO event_counts (minute, kind, count) "
            "SELECT (at / :minute) * :minute, kind, count(*) FROM job_events "
            "WHERE at >= :since AND at >= 0 GROUP BY (at / :minute) * :minute, kind"
        ).bindparams(minute=MINUTE, since=newest - COUNTED_EVENTS_FOR)
    )


def downgrade() -> None:
    op.drop_table("event_counts")
    op.drop_index("ix_jobs_started_at_uncompleted", table_name="jobs")
    job_rollups = op.create_table(
        "job_rollups",
        sa.Column("job_class", sa.String(255), nullable=False),
        sa.Column("origin", sa.String(8), nullable=False),
        sa.Column("hour", sa.BigInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total_micros", sa.BigInteger(), nullable=False),
        sa.Column("max_micros", sa.BigInteger(), nullable=False),
        sa.Column("histogram", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("job_class", "origin", "hour", name="pk_job_rollups"),
    )
    query = (
        "SELECT job_class, origin, count, total_micros, max_micros, histogram FROM duration_rollups "
        "WHERE grain = 'pruned'"
    )
    rows = [
        {
            "job_class": job_class,
            "origin": origin,
            "hour": 0,
            "count": count,
            "total_micros": total,
            "max_micros": longest,
            "histogram": histogram,
        }
        for job_class, origin, count, total, longest, histogram in op.get_bind().exec_driver_sql(query)
    ]
    if rows:
        op.bulk_insert(job_rollups, rows)
    op.drop_index("ix_duration_rollups_grain_start", table_name="duration_rollups")
    op.drop_table("duration_rollups")
