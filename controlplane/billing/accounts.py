"""What organisations and staff read and change about billing through the
API: the account's standing, its invoices, how it pays, plan changes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, func, select

from controlplane.audit import service as audit
from controlplane.audit.models import AuditEntry
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.billing.models import BillingAccount, BillingSubscription, Invoice, Plan
from controlplane.billing.reconcile import ENDED
from controlplane.billing.schemas import BillingUpdate
from controlplane.billing.settings import get_billing_settings
from controlplane.billing.stripe_client import gateway
from controlplane.billing.subscriptions import account_for
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import Conflict, InvalidInput, NotFound
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Organisation


@dataclass(frozen=True)
class BillingView:
    account: BillingAccount
    subscriptions: list[BillingSubscription]

    @property
    def suspend_after(self) -> datetime | None:
        if self.account.past_due_since is None:
            return None
        return self.account.past_due_since + timedelta(
            days=get_billing_settings().billing_grace_days
        )


def get_billing(session: Session, principal: Principal, org_id: uuid.UUID) -> BillingView:
    principal.require(org_id, Perm.billing_read)
    if session.get(Organisation, org_id) is None:  # staff can "see" any id
        raise NotFound("organisation not found")
    # Read without creating: an organisation that never ordered has defaults.
    account = session.get(BillingAccount, org_id) or BillingAccount(
        organisation_id=org_id, days_until_due=get_billing_settings().billing_days_until_due
    )
    subs = session.exec(
        select(BillingSubscription)
        .where(BillingSubscription.organisation_id == org_id)
        .order_by(col(BillingSubscription.id))
    ).all()
    return BillingView(account, list(subs))


def update_billing(
    session: Session, principal: Principal, org_id: uuid.UUID, data: BillingUpdate
) -> BillingView:
    if not principal.can_see(org_id) or session.get(Organisation, org_id) is None:
        raise NotFound("organisation not found")
    principal.require_staff(StaffPerm.organisations_manage)
    changes = data.model_dump(exclude_unset=True)
    if any(value is None for value in changes.values()):
        raise InvalidInput("billing fields cannot be null")
    account = account_for(session, org_id)
    for name, value in changes.items():
        setattr(account, name, value)
    account.updated_at = utcnow()
    session.add(account)
    # Applies to subscriptions made from now on; Stripe keeps each existing
    # subscription's own collection method.
    audit.record(session, principal, "billing.update", "organisation", org_id, org_id, changes)
    return get_billing(session, principal, org_id)


def list_invoices(
    session: Session, principal: Principal, org_id: uuid.UUID, page: PageRequest
) -> tuple[list[Invoice], str | None]:
    principal.require(org_id, Perm.billing_read)
    statement = select(Invoice).where(Invoice.organisation_id == org_id)
    rows = session.exec(paginate(statement, Invoice.id, page)).all()
    return finish_page(rows, page, lambda invoice: invoice.id)


def get_invoice(
    session: Session, principal: Principal, org_id: uuid.UUID, invoice_id: str
) -> Invoice:
    principal.require(org_id, Perm.billing_read)
    invoice = session.exec(select(Invoice).where(Invoice.stripe_id == invoice_id)).first()
    if invoice is None or invoice.organisation_id != org_id:
        raise NotFound("invoice not found")
    return invoice


def change_plan(
    session: Session, principal: Principal, server_id: uuid.UUID, plan_code: str
) -> BillingSubscription:
    """Move a server's subscription to another plan; Stripe prorates the rest
    of the period onto the next invoice."""
    server = session.get(Server, server_id)
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("server not found")
    principal.require(server.organisation_id, Perm.billing_manage, "server")
    plan = session.exec(select(Plan).where(Plan.code == plan_code, col(Plan.active))).first()
    if plan is None:
        raise InvalidInput(f"there is no active plan '{plan_code}'", field="plan")
    sub = session.exec(
        select(BillingSubscription).where(BillingSubscription.server_id == server.id)
    ).first()
    if sub is None or sub.stripe_subscription_id is None or sub.status in ENDED:
        raise Conflict("the server has no live subscription to change")
    if sub.plan_id == plan.id:
        raise Conflict(f"the server is on plan '{plan.code}' already")
    if plan.stripe_price_id is None:
        raise Conflict(f"plan '{plan.code}' is not in Stripe yet; staff run `herd billing sync`")
    # Several changes back and forth are each a new write; the count of
    # earlier changes keeps their keys apart.
    earlier = session.exec(
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.action == "billing.plan_change", AuditEntry.target_id == str(server.id))
    ).one()
    gateway().change_subscription_price(
        sub.stripe_subscription_id,
        plan.stripe_price_id,
        f"herd-plan-change-{server.id}-{earlier}-{plan.id}",
    )
    previous = sub.plan_id
    sub.plan_id = server.plan_id = plan.id
    sub.updated_at = server.updated_at = utcnow()
    session.add_all([sub, server])
    audit.record(
        session,
        principal,
        "billing.plan_change",
        "server",
        server.id,
        server.organisation_id,
        {"from_plan": str(previous), "to_plan": plan.code},
    )
    return sub
