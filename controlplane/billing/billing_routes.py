"""Billing's API: Stripe's webhook, an organisation's billing and invoices,
plan changes. Thin: each route calls a service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Request

import controlplane.billing.work  # noqa: F401  (sends queued events after commit)
from controlplane.billing import accounts, webhooks
from controlplane.billing.accounts import BillingView
from controlplane.billing.schemas import (
    BillingOut,
    BillingUpdate,
    InvoiceOut,
    PlanChange,
    SubscriptionOut,
)
from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.pagination import Page

router = APIRouter(prefix=API_PREFIX, tags=["billing"])


def _billing_out(view: BillingView) -> BillingOut:
    account = view.account
    return BillingOut(
        organisation_id=account.organisation_id,
        stripe_customer_id=account.stripe_customer_id,
        collection_method=account.collection_method,
        days_until_due=account.days_until_due,
        status=account.status,
        past_due_since=account.past_due_since,
        suspend_after=view.suspend_after,
        subscriptions=[SubscriptionOut.model_validate(s) for s in view.subscriptions],
    )


@router.post("/billing/stripe/webhook", include_in_schema=True)
async def stripe_webhook(
    request: Request,
    session: SessionDep,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> dict[str, object]:
    """Stripe's deliveries: verified, stored once, processed by a worker."""
    payload = await request.body()
    event, new = webhooks.receive(session, payload, stripe_signature)
    return {"received": True, "id": event.id, "duplicate": not new}


@router.get("/organisations/{org_id}/billing", response_model=BillingOut)
def get_billing(org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> BillingOut:
    return _billing_out(accounts.get_billing(session, principal, org_id))


@router.patch("/organisations/{org_id}/billing", response_model=BillingOut)
def update_billing(
    org_id: uuid.UUID, data: BillingUpdate, principal: PrincipalDep, session: SessionDep
) -> BillingOut:
    return _billing_out(accounts.update_billing(session, principal, org_id, data))


@router.get("/organisations/{org_id}/invoices", response_model=Page[InvoiceOut])
def list_invoices(
    org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[InvoiceOut]:
    items, cursor = accounts.list_invoices(session, principal, org_id, page)
    return Page(items=[InvoiceOut.model_validate(i) for i in items], next_cursor=cursor)


@router.get("/organisations/{org_id}/invoices/{invoice_id}", response_model=InvoiceOut)
def get_invoice(
    org_id: uuid.UUID, invoice_id: str, principal: PrincipalDep, session: SessionDep
) -> InvoiceOut:
    return InvoiceOut.model_validate(accounts.get_invoice(session, principal, org_id, invoice_id))


@router.post("/servers/{server_id}/plan", response_model=SubscriptionOut)
def change_plan(
    server_id: uuid.UUID, data: PlanChange, principal: PrincipalDep, session: SessionDep
) -> SubscriptionOut:
    return SubscriptionOut.model_validate(
        accounts.change_plan(session, principal, server_id, data.plan)
    )
