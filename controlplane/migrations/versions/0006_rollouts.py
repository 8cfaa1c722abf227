"""Fleet rollouts: the release catalogue, maintenance windows, rollouts and their servers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:03:27.193925
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import controlplane.sqltypes

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "release_series",
        sa.Column("series", sa.String(length=20), nullable=False),
        sa.Column("end_of_support", sa.Date(), nullable=True),
        sa.Column("created_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("series"),
    )
    op.create_table(
        "releases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tag", sa.String(length=40), nullable=False),
        sa.Column("series", sa.String(length=20), nullable=False),
        sa.Column("released_on", sa.Date(), nullable=True),
        sa.Column("security", sa.Boolean(), nullable=False),
        sa.Column("requires_assets_recompile", sa.Boolean(), nullable=False),
        sa.Column("ruby_version", sa.String(length=20), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("tag"),
    )
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_releases_series"), ["series"], unique=False)

    op.create_table(
        "rollouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("target_version", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("state_reason", sa.String(length=500), nullable=True),
        sa.Column("selector", sa.JSON(), nullable=False),
        sa.Column("waves", sa.JSON(), nullable=False),
        sa.Column("concurrency", sa.Integer(), nullable=False),
        sa.Column("soak_seconds", sa.Integer(), nullable=False),
        sa.Column("failure_budget", sa.String(length=10), nullable=False),
        sa.Column("failure_budget_count", sa.Integer(), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("notice_seconds", sa.Integer(), nullable=False),
        sa.Column("current_wave", sa.Integer(), nullable=False),
        sa.Column("wave_done_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.create_index("ix_rollouts_state", ["state", "id"], unique=False)

    op.create_table(
        "maintenance_windows",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("start_minute", sa.Integer(), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("created_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("maintenance_windows", schema=None) as batch_op:
        batch_op.create_index("ix_maintenance_windows_org", ["organisation_id"], unique=False)
        batch_op.create_index("ix_maintenance_windows_server", ["server_id"], unique=False)

    op.create_table(
        "rollout_targets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("rollout_id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("wave", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.Uuid(), nullable=True),
        sa.Column("from_version", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=500), nullable=True),
        sa.Column(
            "notified_before_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "notified_after_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("started_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", controlplane.sqltypes.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["rollout_id"], ["rollouts.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("rollout_id", "server_id"),
    )
    with op.batch_alter_table("rollout_targets", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollout_targets_wave", ["rollout_id", "wave", "position"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("rollout_targets", schema=None) as batch_op:
        batch_op.drop_index("ix_rollout_targets_wave")

    op.drop_table("rollout_targets")
    with op.batch_alter_table("maintenance_windows", schema=None) as batch_op:
        batch_op.drop_index("ix_maintenance_windows_server")
        batch_op.drop_index("ix_maintenance_windows_org")

    op.drop_table("maintenance_windows")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_index("ix_rollouts_state")

    op.drop_table("rollouts")
    with op.batch_alter_table("releases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_releases_series"))

    op.drop_table("releases")
    op.drop_table("release_series")
