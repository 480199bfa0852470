"""Jobs per class, queue and status, kept as the ledger is written (``store.job_counts``): the
counts of the lists, the dashboard and ``/api/v1/stats`` read a few rows instead of counting the
jobs (0.1-2.4 s for a large status, class or queue at ten million jobs on PostgreSQL, up to 0.26 s
at a million on SQLite). The table is filled from the jobs the ledger holds.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

COUNT_EVERY_JOB = (
    "INSERT INTO job_counts (job_class, queue, status, count) "
    "SELECT job_class, queue, status, COUNT(*) FROM jobs GROUP BY job_class, queue, status"
)


def upgrade() -> None:
    op.create_table(
        "job_counts",
        sa.Column("job_class", sa.String(255), nullable=False),
        sa.Column("queue", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("job_class", "queue", "status", name="pk_job_counts"),
    )
    op.execute(COUNT_EVERY_JOB)


def downgrade() -> None:
    op.drop_table("job_counts")
