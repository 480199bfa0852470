"""Roll-ups of the completed jobs that retention deletes (per class, origin and hour).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
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


def downgrade() -> None:
    op.drop_table("job_rollups")
