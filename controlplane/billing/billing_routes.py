"""Billing's API: Stripe's webhook, an organisation's billing and invoices,
plan changes, add-ons. Thin: each route calls a service."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Request

import controlplane.billing.work  # noqa: F401  (sends queued events after commit)
from controlplane.billing import accounts, addons, webhooks
from controlplane.billing.accounts import BillingView
from controlplane.billing.models import AddOnOrder
from controlplane.billing.schemas import (
    AddOnOrderOut,
    AddOnOut,
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


# -- add-ons --------------------------------------------------------------------------


def _order_out(order: AddOnOrder, code: str) -> AddOnOrderOut:
    return AddOnOrderOut.model_validate(order.model_dump() | {"addon": code})


@router.get("/addons", response_model=list[AddOnOut])
def list_addons(principal: PrincipalDep, session: SessionDep) -> list[AddOnOut]:
    """The add-ons on offer: `per` says whether one is ordered for a server or
    for the organisation."""
    return [AddOnOut.model_validate(a) for a in addons.list_catalogue(session)]


@router.get("/organisations/{org_id}/addons", response_model=Page[AddOnOrderOut])
def list_organisation_addons(
    org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[AddOnOrderOut]:
    """The organisation's add-on orders, its servers' included, ended ones too."""
    items, cursor = addons.list_for_organisation(session, principal, org_id, page)
    return Page(items=[_order_out(o, code) for o, code in items], next_cursor=cursor)


@router.post("/organisations/{org_id}/addons/{code}", response_model=AddOnOrderOut, status_code=202)
def order_organisation_addon(
    org_id: uuid.UUID, code: str, principal: PrincipalDep, session: SessionDep
) -> AddOnOrderOut:
    """Order an organisation-wide add-on (the support contract, billed
    yearly on its own subscription). It is active once paid; by card, pay at
    `checkout_url` once the order shows one."""
    return _order_out(addons.order_for_organisation(session, principal, org_id, code), code)


@router.delete(
    "/organisations/{org_id}/addons/{code}", response_model=AddOnOrderOut, status_code=202
)
def cancel_organisation_addon(
    org_id: uuid.UUID, code: str, principal: PrincipalDep, session: SessionDep
) -> AddOnOrderOut:
    """Cancel it: a paid contract runs to the end of its year; an unpaid one
    ends now."""
    return _order_out(addons.cancel_for_organisation(session, principal, org_id, code), code)


@router.get("/servers/{server_id}/addons", response_model=Page[AddOnOrderOut])
def list_server_addons(
    server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[AddOnOrderOut]:
    items, cursor = addons.list_for_server(session, principal, server_id, page)
    return Page(items=[_order_out(o, code) for o, code in items], next_cursor=cursor)


@router.post("/servers/{server_id}/addons/{code}", response_model=AddOnOrderOut, status_code=202)
def order_server_addon(
    server_id: uuid.UUID, code: str, principal: PrincipalDep, session: SessionDep
) -> AddOnOrderOut:
    """Add a per-server add-on (moderation staffing) to the server's monthly
    subscription; Stripe charges the rest of this period on the next invoice."""
    return _order_out(addons.order_for_server(session, principal, server_id, code), code)


@router.delete("/servers/{server_id}/addons/{code}", response_model=AddOnOrderOut, status_code=202)
def cancel_server_addon(
    server_id: uuid.UUID, code: str, principal: PrincipalDep, session: SessionDep
) -> AddOnOrderOut:
    """Take it off the server's subscription; the unused rest of the period is
    credited on the next invoice."""
    return _order_out(addons.cancel_for_server(session, principal, server_id, code), code)
