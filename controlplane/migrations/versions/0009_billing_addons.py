"""Billing add-ons: each order of moderation staffing (per server) or a
support contract (per organisation), from order to end.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 17:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import controlplane.sqltypes

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = controlplane.sqltypes.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "billing_addon_orders",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("addon_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("live_key", sa.String(length=80), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_item_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_item_created", sa.BigInteger(), nullable=True),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.String(length=2000), nullable=True),
        sa.Column("stripe_status", sa.String(length=32), nullable=True),
        sa.Column("status_created", sa.BigInteger(), nullable=True),
        sa.Column("status_event_id", sa.String(length=255), nullable=True),
        sa.Column("paid_at", _TS, nullable=True),
        sa.Column("cancel_requested_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["addon_id"], ["billing_addons.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("live_key"),
    )
    op.create_index(
        "ix_billing_addon_orders_organisation_id",
        "billing_addon_orders",
        ["organisation_id"],
        unique=False,
    )
    op.create_index(
        "ix_billing_addon_orders_server_id", "billing_addon_orders", ["server_id"], unique=False
    )
    op.create_index(
        "ix_billing_addon_orders_stripe_subscription_id",
        "billing_addon_orders",
        ["stripe_subscription_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        "ix_billing_addon_orders_stripe_subscription_id", table_name="billing_addon_orders"
    )
    op.drop_index("ix_billing_addon_orders_server_id", table_name="billing_addon_orders")
    op.drop_index("ix_billing_addon_orders_organisation_id", table_name="billing_addon_orders")
    op.drop_table("billing_addon_orders")
