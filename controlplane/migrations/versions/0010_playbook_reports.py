"""Playbook reports: the runs of pulled bundles that in-house teams report.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import controlplane.sqltypes

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = controlplane.sqltypes.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "playbook_reports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("reported_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("reported_by_token_id", sa.Uuid(), nullable=True),
        sa.Column("playbook", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("bundle_version", sa.String(length=40), nullable=False),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        sa.Column("hosts", sa.JSON(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_playbook_reports_org_id", "playbook_reports", ["organisation_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_playbook_reports_org_id", table_name="playbook_reports")
    op.drop_table("playbook_reports")
