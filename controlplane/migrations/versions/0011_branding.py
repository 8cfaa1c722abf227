"""Per-server branding: colours, custom CSS, and the logo and background
image by SHA-256 (the files are under the data directory).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import controlplane.sqltypes

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_branding",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("primary_color", sa.String(length=7), nullable=False),
        sa.Column("accent_color", sa.String(length=7), nullable=False),
        sa.Column("background_color", sa.String(length=7), nullable=False),
        sa.Column("text_color", sa.String(length=7), nullable=False),
        sa.Column("custom_css", sa.Text(), nullable=False),
        sa.Column("logo_sha256", sa.String(length=64), nullable=True),
        sa.Column("logo_type", sa.String(length=20), nullable=True),
        sa.Column("background_sha256", sa.String(length=64), nullable=True),
        sa.Column("background_type", sa.String(length=20), nullable=True),
        sa.Column("updated_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("server_id"),
    )


def downgrade() -> None:
    op.drop_table("server_branding")
