"""What a restart needs of each job's Sidekiq payload (the ``job_payloads`` table).

Jobs stored before it whose arguments hold the redaction mark are marked "withheld": their
secrets were never kept, and a restart must refuse them rather than push the mark.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "job_payloads",
        sa.Column("jid", sa.String(128), nullable=False),
        sa.Column("form", sa.String(8), nullable=False),
        sa.Column("payload", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("jid", name="pk_job_payloads"),
    )
    op.execute(
        "INSERT INTO job_payloads (jid, form) "
        "SELECT jid, 'withheld' FROM jobs WHERE arguments LIKE '%\"[REDACTED]\"%'"
    )


def downgrade() -> None:
    op.drop_table("job_payloads")
