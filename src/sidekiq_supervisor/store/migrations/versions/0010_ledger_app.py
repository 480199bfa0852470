"""The app a ledger belongs to (``sidekiq_supervisor.apps``): one row, written when the app first
opens it. A ledger written before apps existed has none, and becomes the default app's when that
app opens it: every job and history row stays where it is.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_app",
        sa.Column("name", sa.String(63), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_ledger_app"),
    )


def downgrade() -> None:
    op.drop_table("ledger_app")
