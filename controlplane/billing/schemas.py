from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from controlplane.schemas import Input, Output

PlanCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")]


class PlanCreate(Input):
    code: PlanCode
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    monthly_price_cents: int = Field(ge=0, le=100_000_000)
    currency: Currency = "eur"
    max_users: int = Field(ge=1, le=10_000_000)
    storage_gb: int = Field(ge=1, le=1_000_000)


class PlanUpdate(Input):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    monthly_price_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    max_users: int | None = Field(default=None, ge=1, le=10_000_000)
    storage_gb: int | None = Field(default=None, ge=1, le=1_000_000)
    active: bool | None = None


class PlanOut(Output):
    id: uuid.UUID
    code: str
    name: str
    description: str
    monthly_price_cents: int
    currency: str
    max_users: int
    storage_gb: int
    active: bool
    created_at: datetime


class BillingUpdate(Input):
    """Staff: how an organisation pays. send_invoice is bank transfer (an
    emailed invoice due in `days_until_due` days)."""

    collection_method: Literal["charge_automatically", "send_invoice"] | None = None
    days_until_due: int | None = Field(default=None, ge=1, le=365)


class SubscriptionOut(Output):
    server_id: uuid.UUID
    plan_id: uuid.UUID
    stripe_subscription_id: str | None
    status: str
    checkout_url: str | None
    paid_at: datetime | None
    ended_at: datetime | None
    suspended_by_billing: bool


class BillingOut(Output):
    organisation_id: uuid.UUID
    stripe_customer_id: str | None
    collection_method: str
    days_until_due: int
    status: str
    past_due_since: datetime | None
    suspend_after: datetime | None
    subscriptions: list[SubscriptionOut]


class InvoiceOut(Output):
    id: uuid.UUID
    stripe_id: str
    number: str | None
    status: str
    amount_due: int
    amount_paid: int
    currency: str
    hosted_invoice_url: str | None
    invoice_pdf: str | None
    stripe_subscription_id: str | None
    created: datetime
    due_date: datetime | None


class PlanChange(Input):
    plan: PlanCode


class AddOnOut(Output):
    """An add-on in the catalogue."""

    code: str
    name: str
    price_cents: int
    currency: str
    interval: str
    per: str


class AddOnOrderOut(Output):
    id: uuid.UUID
    addon: str
    organisation_id: uuid.UUID
    server_id: uuid.UUID | None
    status: str
    stripe_subscription_id: str | None
    checkout_url: str | None
    paid_at: datetime | None
    cancel_requested_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
