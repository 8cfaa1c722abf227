"""Hosts created by a provider (EC2): its instance id and launch specification.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 00:11:01.674937
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_ref", sa.String(length=64), nullable=True))
        # Existing hosts were registered by hand: an empty specification.
        batch_op.add_column(
            sa.Column("launch_spec", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )


def downgrade() -> None:

    with op.batch_alter_table("hosts", schema=None) as batch_op:
        batch_op.drop_column("launch_spec")
        batch_op.drop_column("provider_ref")
