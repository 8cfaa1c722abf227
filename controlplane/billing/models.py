from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, String
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import UTCDateTime, utcnow


class Plan(SQLModel, table=True):
    __tablename__ = "plans"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    code: str = Field(sa_type=String(40), unique=True, index=True)
    name: str = Field(sa_type=String(100))
    description: str = Field(default="", sa_type=String(500))
    monthly_price_cents: int = Field(ge=0)
    currency: str = Field(default="eur", sa_type=String(3))
    max_users: int = Field(ge=1)
    storage_gb: int = Field(ge=1)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Set by `herd billing sync`; a new price replaces the old one whenever the
    # amount changes (Stripe prices are immutable).
    stripe_product_id: str | None = Field(default=None, sa_type=String(255))
    stripe_price_id: str | None = Field(default=None, sa_type=String(255))
    # What the price was made from (amount, currency, interval): a change
    # means a new price.
    stripe_price_key: str | None = Field(default=None, sa_type=String(200))


class AddOn(SQLModel, table=True):
    """Something billed beside a plan: moderation staffing per server (monthly)
    or a support contract per organisation (yearly)."""

    __tablename__ = "billing_addons"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    code: str = Field(sa_type=String(40), unique=True, index=True)
    name: str = Field(sa_type=String(100))
    price_cents: int = Field(ge=0)
    currency: str = Field(default="eur", sa_type=String(3))
    interval: str = Field(default="month", sa_type=String(8))  # month | year
    per: str = Field(default="server", sa_type=String(16))  # server | organisation
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    stripe_product_id: str | None = Field(default=None, sa_type=String(255))
    stripe_price_id: str | None = Field(default=None, sa_type=String(255))
    # What the price was made from (amount, currency, interval): a change
    # means a new price.
    stripe_price_key: str | None = Field(default=None, sa_type=String(200))


class BillingAccount(SQLModel, table=True):
    """An organisation as Stripe's customer, and where it stands in dunning."""

    __tablename__ = "billing_accounts"

    organisation_id: uuid.UUID = Field(
        foreign_key="organisations.id", primary_key=True, ondelete="CASCADE"
    )
    stripe_customer_id: str | None = Field(default=None, sa_type=String(255), unique=True)
    # charge_automatically (card, through Checkout) | send_invoice (bank transfer)
    collection_method: str = Field(default="charge_automatically", sa_type=String(24))
    days_until_due: int = 30
    status: str = Field(default="good", sa_type=String(16))  # good | past_due
    past_due_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class BillingSubscription(SQLModel, table=True):
    """The Stripe subscription that pays for one server."""

    __tablename__ = "billing_subscriptions"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    server_id: uuid.UUID = Field(foreign_key="servers.id", unique=True, ondelete="CASCADE")
    organisation_id: uuid.UUID = Field(
        foreign_key="organisations.id", index=True, ondelete="CASCADE"
    )
    plan_id: uuid.UUID = Field(foreign_key="plans.id", ondelete="RESTRICT")
    stripe_subscription_id: str | None = Field(default=None, sa_type=String(255), unique=True)
    checkout_session_id: str | None = Field(default=None, sa_type=String(255))
    checkout_url: str | None = Field(default=None, sa_type=String(2000))
    # Stripe's status as of the newest snapshot applied ("pending" before
    # Stripe has one), and which snapshot that was.
    status: str = Field(default="pending", sa_type=String(32))
    status_created: int | None = Field(default=None, sa_type=BigInteger)
    status_event_id: str | None = Field(default=None, sa_type=String(255))
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Only servers billing suspended are resumed by billing: a suspension for
    # abuse stays until staff lift it.
    suspended_by_billing: bool = False
    final_backup_job_id: uuid.UUID | None = None
    deprovision_job_id: uuid.UUID | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Invoice(SQLModel, table=True):
    """Herd's copy of a Stripe invoice, as of the newest snapshot seen."""

    __tablename__ = "billing_invoices"
    __table_args__ = (Index("ix_billing_invoices_org_created", "organisation_id", "created"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    stripe_id: str = Field(sa_type=String(255), unique=True)  # Stripe's in_...
    organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisations.id", ondelete="CASCADE"
    )
    stripe_customer_id: str | None = Field(default=None, sa_type=String(255))
    stripe_subscription_id: str | None = Field(default=None, sa_type=String(255), index=True)
    number: str | None = Field(default=None, sa_type=String(64))
    status: str = Field(sa_type=String(16))  # draft | open | paid | void | uncollectible
    attempt_count: int = 0
    amount_due: int = Field(default=0, sa_type=BigInteger)
    amount_paid: int = Field(default=0, sa_type=BigInteger)
    currency: str = Field(default="eur", sa_type=String(3))
    hosted_invoice_url: str | None = Field(default=None, sa_type=String(2000))
    invoice_pdf: str | None = Field(default=None, sa_type=String(2000))
    created: datetime = Field(sa_type=UTCDateTime)
    due_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    snapshot_created: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class StripeEvent(SQLModel, table=True):
    """Each webhook delivery's event, stored once by Stripe's id."""

    __tablename__ = "stripe_events"
    __table_args__ = (Index("ix_stripe_events_pending", "processed_at", "received_at"),)

    id: str = Field(sa_type=String(255), primary_key=True)  # Stripe's evt_...
    type: str = Field(sa_type=String(100))
    created: int = Field(sa_type=BigInteger)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=String(500))


class AddOnOrder(SQLModel, table=True):
    """One add-on ordered for a server (moderation staffing, an item on the
    server's monthly subscription) or for an organisation (a support
    contract, its own yearly subscription), from order to end.

    status: pending (ordered; Stripe not written or not paid yet) → active →
    cancelling (asked to end; Stripe not told yet, or the contract runs to
    the end of its paid period) → ended. An order that never became active
    can end too."""

    __tablename__ = "billing_addon_orders"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    addon_id: uuid.UUID = Field(foreign_key="billing_addons.id", ondelete="RESTRICT")
    organisation_id: uuid.UUID = Field(
        foreign_key="organisations.id", index=True, ondelete="CASCADE"
    )
    server_id: uuid.UUID | None = Field(
        default=None, foreign_key="servers.id", index=True, ondelete="CASCADE"
    )
    status: str = Field(default="pending", sa_type=String(16))
    # "<addon id>:<server or organisation id>" while the order is not ended,
    # NULL after: the unique index allows one live order per add-on and
    # target even when two requests race.
    live_key: str | None = Field(default=None, sa_type=String(80), unique=True)
    # The server's subscription (moderation) or the contract's own.
    stripe_subscription_id: str | None = Field(default=None, sa_type=String(255), index=True)
    stripe_item_id: str | None = Field(default=None, sa_type=String(255))
    # When Stripe made the item: a subscription snapshot newer than this
    # without the item means the item was removed.
    stripe_item_created: int | None = Field(default=None, sa_type=BigInteger)
    checkout_session_id: str | None = Field(default=None, sa_type=String(255))
    checkout_url: str | None = Field(default=None, sa_type=String(2000))
    # Stripe's status of the contract's own subscription, as of the newest
    # snapshot applied (as BillingSubscription keeps it).
    stripe_status: str | None = Field(default=None, sa_type=String(32))
    status_created: int | None = Field(default=None, sa_type=BigInteger)
    status_event_id: str | None = Field(default=None, sa_type=String(255))
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancel_requested_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
