"""An index of the history by kind: the recoveries list reads the rare restarted and quarantined
events newest first without walking every report.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_job_events_kindid", "job_events", ["kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_job_events_kindid", table_name="job_events")
