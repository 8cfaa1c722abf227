"""Moderation staffing: teams and their members, a team's assignment to a
server, and the moderator access (account, encrypted admin API token) Herd
gives on each staffed server.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 21:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import controlplane.sqltypes

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "moderation_teams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("languages", sa.JSON(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("coverage", sa.JSON(), nullable=False),
        sa.Column("created_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "moderation_team_members",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("mastodon_username", sa.String(length=30), nullable=False),
        sa.Column("created_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["team_id"], ["moderation_teams.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "mastodon_username"),
        sa.UniqueConstraint("team_id", "user_id"),
    )
    op.create_index(
        "ix_moderation_team_members_user_id", "moderation_team_members", ["user_id"], unique=False
    )
    op.create_table(
        "moderation_assignments",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("response_minutes", sa.Integer(), nullable=False),
        sa.Column("assigned_by", sa.Uuid(), nullable=True),
        sa.Column("assigned_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["assigned_by"], ["users.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["moderation_teams.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("server_id"),
    )
    op.create_index(
        "ix_moderation_assignments_team_id", "moderation_assignments", ["team_id"], unique=False
    )
    op.create_table(
        "moderator_access",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("mastodon_username", sa.String(length=30), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=True),
        sa.Column("token_encrypted", sa.Text(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("granted_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("server_id", "mastodon_username"),
    )
    op.create_index(
        "ix_moderator_access_state", "moderator_access", ["server_id", "state"], unique=False
    )
    op.create_index("ix_moderator_access_user_id", "moderator_access", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_moderator_access_user_id", table_name="moderator_access")
    op.drop_index("ix_moderator_access_state", table_name="moderator_access")
    op.drop_table("moderator_access")
    op.drop_index("ix_moderation_assignments_team_id", table_name="moderation_assignments")
    op.drop_table("moderation_assignments")
    op.drop_index("ix_moderation_team_members_user_id", table_name="moderation_team_members")
    op.drop_table("moderation_team_members")
    op.drop_table("moderation_teams")
