"""Alerts and their notifications: the open alerts and their history, the messages that told them,
and each message's delivery to each notification URL (``docs/alerts.md``). Kept in the ledger so
that a restart neither fires an open alert again nor forgets a message still to deliver.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# SQLite only makes INTEGER PRIMARY KEY an alias of the rowid (auto-incrementing); BIGINT elsewhere.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(320), nullable=False),
        sa.Column("condition", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(255), nullable=False),
        sa.Column("opened_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("clear_since", sa.BigInteger(), nullable=True),
        sa.Column("resolved_at", sa.BigInteger(), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("sample", sa.Text(), nullable=False),
        sa.Column("fired_message_id", sa.BigInteger(), nullable=True),
        sa.Column("resolved_message_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
    )
    op.create_index(
        "ix_alerts_key",
        "alerts",
        ["key"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )
    op.create_table(
        "alert_messages",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_messages"),
    )
    op.create_index("ix_alert_messages_kind_created_at", "alert_messages", ["kind", "created_at"])
    op.create_table(
        "alert_deliveries",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("target_key", sa.String(64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.BigInteger(), nullable=False),
        sa.Column("last_attempt_at", sa.BigInteger(), nullable=True),
        sa.Column("sent_at", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_alert_deliveries"),
    )
    op.create_index(
        "ix_alert_deliveries_status_next_attempt_at", "alert_deliveries", ["status", "next_attempt_at"]
    )
    op.create_index("ix_alert_deliveries_message_id", "alert_deliveries", ["message_id"])


def downgrade() -> None:
    op.drop_table("alert_deliveries")
    op.drop_table("alert_messages")
    op.drop_table("alerts")
