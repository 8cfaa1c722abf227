"""Billing through Stripe: catalogue ids, add-ons, customers, subscriptions,
invoices and the webhook events they came from.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import controlplane.sqltypes

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = controlplane.sqltypes.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.add_column(sa.Column("stripe_product_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("stripe_price_id", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("stripe_price_key", sa.String(length=200), nullable=True))

    op.create_table(
        "billing_addons",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("interval", sa.String(length=8), nullable=False),
        sa.Column("per", sa.String(length=16), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("stripe_product_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_price_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_price_key", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_billing_addons_code", "billing_addons", ["code"], unique=True)

    op.create_table(
        "billing_accounts",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("collection_method", sa.String(length=24), nullable=False),
        sa.Column("days_until_due", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("past_due_since", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("organisation_id"),
        sa.UniqueConstraint("stripe_customer_id"),
    )

    op.create_table(
        "billing_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("server_id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.Uuid(), nullable=False),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_session_id", sa.String(length=255), nullable=True),
        sa.Column("checkout_url", sa.String(length=2000), nullable=True),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("status_created", sa.BigInteger(), nullable=True),
        sa.Column("status_event_id", sa.String(length=255), nullable=True),
        sa.Column("paid_at", _TS, nullable=True),
        sa.Column("ended_at", _TS, nullable=True),
        sa.Column("suspended_by_billing", sa.Boolean(), nullable=False),
        sa.Column("final_backup_job_id", sa.Uuid(), nullable=True),
        sa.Column("deprovision_job_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["server_id"], ["servers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("server_id"),
        sa.UniqueConstraint("stripe_subscription_id"),
    )
    op.create_index(
        "ix_billing_subscriptions_organisation_id",
        "billing_subscriptions",
        ["organisation_id"],
        unique=False,
    )

    op.create_table(
        "billing_invoices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("stripe_id", sa.String(length=255), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=True),
        sa.Column("stripe_customer_id", sa.String(length=255), nullable=True),
        sa.Column("stripe_subscription_id", sa.String(length=255), nullable=True),
        sa.Column("number", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False),
        sa.Column("amount_due", sa.BigInteger(), nullable=False),
        sa.Column("amount_paid", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("hosted_invoice_url", sa.String(length=2000), nullable=True),
        sa.Column("invoice_pdf", sa.String(length=2000), nullable=True),
        sa.Column("created", _TS, nullable=False),
        sa.Column("due_date", _TS, nullable=True),
        sa.Column("snapshot_created", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["organisation_id"], ["organisations.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_id"),
    )
    op.create_index(
        "ix_billing_invoices_org_created",
        "billing_invoices",
        ["organisation_id", "created"],
        unique=False,
    )
    op.create_index(
        "ix_billing_invoices_stripe_subscription_id",
        "billing_invoices",
        ["stripe_subscription_id"],
        unique=False,
    )

    op.create_table(
        "stripe_events",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("processed_at", _TS, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_stripe_events_pending", "stripe_events", ["processed_at", "received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_stripe_events_pending", table_name="stripe_events")
    op.drop_table("stripe_events")
    op.drop_index("ix_billing_invoices_stripe_subscription_id", table_name="billing_invoices")
    op.drop_index("ix_billing_invoices_org_created", table_name="billing_invoices")
    op.drop_table("billing_invoices")
    op.drop_index("ix_billing_subscriptions_organisation_id", table_name="billing_subscriptions")
    op.drop_table("billing_subscriptions")
    op.drop_table("billing_accounts")
    op.drop_index("ix_billing_addons_code", table_name="billing_addons")
    op.drop_table("billing_addons")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_column("stripe_price_key")
        batch_op.drop_column("stripe_price_id")
        batch_op.drop_column("stripe_product_id")
