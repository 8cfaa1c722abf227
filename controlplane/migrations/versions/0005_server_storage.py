"""Each server's object storage grant: its buckets and its encrypted access key.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 13:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import controlplane.sqltypes

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "server_storage",
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("media_bucket", sa.String(length=63), nullable=False),
        sa.Column("backups_bucket", sa.String(length=63), nullable=False),
        sa.Column("access_key_id", sa.String(length=128), nullable=False),
        sa.Column("secret_access_key_encrypted", sa.Text(), nullable=False),
        sa.Column("created_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("server_id"),
    )


def downgrade() -> None:
    op.drop_table("server_storage")
