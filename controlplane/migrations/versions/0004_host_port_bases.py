"""Per-host port bases: slot n listens on base + n (several tenants per host).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 00:26:20.302734
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        # Mastodon's own defaults, which hosts registered so far were given.
        batch_op.add_column(
            sa.Column("web_port_base", sa.Integer(), nullable=False, server_default="3000")
        )
        batch_op.add_column(
            sa.Column("streaming_port_base", sa.Integer(), nullable=False, server_default="4000")
        )


def downgrade() -> None:
    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("streaming_port_base")
        batch_op.drop_column("web_port_base")
