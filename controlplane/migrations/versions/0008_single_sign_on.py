"""Single sign-on: each organisation's SSO choice and each server's OIDC client.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 17:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import controlplane.sqltypes

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisation_sso",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("login_theme", sa.String(length=100), nullable=True),
        sa.Column("omniauth_only", sa.Boolean(), nullable=False),
        sa.Column("one_click_sso_login", sa.Boolean(), nullable=False),
        sa.Column("upstream", sa.JSON(), nullable=True),
        sa.Column("upstream_secret_encrypted", sa.Text(), nullable=True),
        sa.Column("updated_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("organisation_id"),
    )
    op.create_table(
        "server_sso",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("realm", sa.String(length=100), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("redirect_uri", sa.String(length=300), nullable=False),
        sa.Column("issuer", sa.String(length=300), nullable=False),
        sa.Column("secret_encrypted", sa.Text(), nullable=False),
        sa.Column("rotated_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("server_id"),
    )


def downgrade() -> None:
    op.drop_table("server_sso")
    op.drop_table("organisation_sso")
