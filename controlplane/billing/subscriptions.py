"""Customers, subscriptions and plan changes: Herd's side of each Stripe write.

Stripe is called from workers, never inside a request: an order records the
intent (the server awaiting payment, a pending subscription row) and a task
sent after commit makes the Stripe objects. Each write's idempotency key is
built from Herd's ids, so the task run twice replays Stripe's first answer.
"""

from __future__ import annotations

import logging
import uuid

from sqlmodel import Session, select

from controlplane.audit import service as audit
from controlplane.billing.models import BillingAccount, BillingSubscription, Plan
from controlplane.billing.settings import BillingSettings, get_billing_settings
from controlplane.billing.stripe_client import StripeRejected, gateway
from controlplane.servers.lifecycle import Actor, ServerState
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Organisation

log = logging.getLogger(__name__)
SUBSCRIBE_KEY = "herd_billing_subscribe"


def account_for(session: Session, org_id: uuid.UUID) -> BillingAccount:
    account = session.get(BillingAccount, org_id)
    if account is None:
        account = BillingAccount(
            organisation_id=org_id, days_until_due=get_billing_settings().billing_days_until_due
        )
        session.add(account)
        session.flush()
    return account


def on_order(session: Session, server: Server, plan: Plan) -> None:
    """With billing on, a new order waits for payment: the server moves to
    awaiting_payment and its subscription is made once this commits. Without
    it, the order waits for staff approval as it always did."""
    if not get_billing_settings().enabled:
        return
    from controlplane.servers.service import apply_event

    account_for(session, server.organisation_id)
    apply_event(session, server, "submit_for_payment", Actor.system, "billing")
    session.add(
        BillingSubscription(
            server_id=server.id, organisation_id=server.organisation_id, plan_id=plan.id
        )
    )
    session.info.setdefault(SUBSCRIBE_KEY, []).append(server.id)


def queued_subscriptions(session: Session) -> list[uuid.UUID]:
    return list(session.info.pop(SUBSCRIBE_KEY, []))


def ensure_customer(session: Session, org: Organisation) -> BillingAccount:
    account = account_for(session, org.id)
    if account.stripe_customer_id is None:
        account.stripe_customer_id = gateway().create_customer(
            org.name,
            org.billing_email,
            {"herd_organisation_id": str(org.id), "herd_slug": org.slug},
            f"herd-customer-{org.id}",
        )
        account.updated_at = utcnow()
        session.add(account)
    return account


def subscribe(
    session: Session, server_id: uuid.UUID, settings: BillingSettings | None = None
) -> None:
    """Make the Stripe subscription (bank transfer) or Checkout session (card)
    for an order awaiting payment. Idempotent: a row that has either is left
    as it is, and a repeated call replays Stripe's first answer."""
    settings = settings or get_billing_settings()
    sub = session.exec(
        select(BillingSubscription).where(BillingSubscription.server_id == server_id)
    ).first()
    server = session.get(Server, server_id)
    if sub is None or server is None or server.state != ServerState.awaiting_payment:
        return
    if sub.stripe_subscription_id or sub.checkout_session_id:
        return
    org = session.get(Organisation, server.organisation_id)
    plan = session.get(Plan, sub.plan_id)
    assert org is not None
    assert plan is not None
    if plan.stripe_price_id is None:
        raise StripeRejected(f"plan '{plan.code}' has no Stripe price; run `herd billing sync`")
    account = ensure_customer(session, org)
    assert account.stripe_customer_id is not None
    metadata = {"herd_server_id": str(server.id), "herd_organisation_id": str(org.id)}
    if account.collection_method == "send_invoice":
        created = gateway().create_subscription(
            account.stripe_customer_id,
            [plan.stripe_price_id],
            metadata,
            "send_invoice",
            account.days_until_due,
            f"herd-subscription-{server.id}",
        )
        sub.stripe_subscription_id = created.id
    else:
        checkout = gateway().create_checkout_session(
            account.stripe_customer_id,
            [plan.stripe_price_id],
            metadata,
            settings.billing_success_url,
            settings.billing_cancel_url,
            str(server.id),
            f"herd-checkout-{server.id}",
        )
        sub.checkout_session_id, sub.checkout_url = checkout.id, checkout.url
    sub.updated_at = utcnow()
    session.add(sub)
    audit.record(
        session,
        None,
        "billing.subscribe",
        "server",
        server.id,
        org.id,
        {"collection_method": account.collection_method},
        actor_label="billing",
    )
