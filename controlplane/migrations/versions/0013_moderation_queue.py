"""The fleet moderation queue: reports mirrored from staffed servers, and per
server the webhook secret and how its pulls went.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import controlplane.sqltypes

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    utc = controlplane.sqltypes.UTCDateTime(timezone=True)
    op.create_table(
        "moderation_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("remote_id", sa.String(length=40), nullable=False),
        sa.Column("category", sa.String(length=30), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("forwarded", sa.Boolean(), nullable=False),
        sa.Column("target_account_id", sa.String(length=40), nullable=False),
        sa.Column("target_acct", sa.String(length=300), nullable=False),
        sa.Column("reporter_account_id", sa.String(length=40), nullable=True),
        sa.Column("reporter_acct", sa.String(length=300), nullable=True),
        sa.Column("assigned_account_id", sa.String(length=40), nullable=True),
        sa.Column("assigned_acct", sa.String(length=300), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("updated_at", utc, nullable=False),
        sa.Column("action_taken", sa.Boolean(), nullable=False),
        sa.Column("action_taken_at", utc, nullable=True),
        sa.Column("first_seen_at", utc, nullable=False),
        sa.Column("first_action_at", utc, nullable=True),
        sa.Column("synced_at", utc, nullable=False),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("server_id", "remote_id"),
    )
    op.create_index(
        "ix_moderation_reports_open",
        "moderation_reports",
        ["action_taken", "server_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_moderation_reports_created",
        "moderation_reports",
        ["server_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "moderation_feeds",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("webhook_secret_encrypted", sa.Text(), nullable=False),
        sa.Column("last_pull_at", utc, nullable=True),
        sa.Column("last_success_at", utc, nullable=True),
        sa.Column("failing_since", utc, nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("server_id"),
    )


def downgrade() -> None:
    op.drop_table("moderation_feeds")
    op.drop_index("ix_moderation_reports_created", table_name="moderation_reports")
    op.drop_index("ix_moderation_reports_open", table_name="moderation_reports")
    op.drop_table("moderation_reports")
