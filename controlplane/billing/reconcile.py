"""Turning Stripe's events into Herd's state, whatever order they arrive in.

Stripe delivers at least once and in no particular order, so no decision
here follows arrival order. Each event's object is a snapshot; a snapshot is
kept only if it is newer than the one held, by a version that only moves
forward:

- an invoice's status goes draft → open → paid | void | uncollectible and
  its attempt count only grows, so (status rank, attempt count, event time)
  orders its snapshots even when two share a second;
- a subscription that has ended (canceled, incomplete_expired) never starts
  again; otherwise the later event wins, ties going to the greater event id
  so that every order of delivery ends the same.

What Herd then does is derived from the snapshots held, never from the event
in hand: a server is paid for once any invoice of its subscription is paid;
an organisation is past due while any invoice of a live subscription is open
after a failed attempt or past its due date; a subscription has ended when
its newest snapshot says so. The same derivation runs from the periodic tick
with the time injected, which is where grace and retention periods expire.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.billing import addon_state, dunning_mail
from controlplane.billing.models import BillingAccount, BillingSubscription, Invoice, StripeEvent
from controlplane.billing.settings import BillingSettings, get_billing_settings
from controlplane.jobs.models import Job, JobState
from controlplane.servers.lifecycle import Actor, ServerState
from controlplane.servers.models import Server
from controlplane.servers.service import apply_event, start_host_job, start_provisioning
from controlplane.tenancy.models import Membership, Organisation, User

log = logging.getLogger(__name__)
ACTOR = "billing"
MAIL_KEY = "herd_billing_mail"

ENDED = frozenset({"canceled", "incomplete_expired"})
_INVOICE_RANK = {"draft": 0, "open": 1, "paid": 2, "void": 2, "uncollectible": 2}
INVOICE_EVENTS = frozenset(
    {
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.paid",
        "invoice.payment_succeeded",
        "invoice.payment_failed",
        "invoice.voided",
        "invoice.marked_uncollectible",
        "invoice.overdue",
    }
)
SUBSCRIPTION_EVENTS = frozenset(
    {
        "customer.subscription.created",
        "customer.subscription.updated",
        "customer.subscription.deleted",
    }
)


@dataclass(frozen=True)
class Mail:
    to: list[str]
    subject: str
    body: str
    message_id: str


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if isinstance(value, int) else None


def _metadata_server(obj: dict[str, Any]) -> uuid.UUID | None:
    metadata = obj.get("metadata") or {}
    raw = metadata.get("herd_server_id") or obj.get("client_reference_id")
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


def _invoice_subscription(obj: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The invoice's subscription id and that subscription's metadata. Current
    API versions put both under parent.subscription_details; endpoints pinned
    to an older version send a top-level `subscription`."""
    details = ((obj.get("parent") or {}).get("subscription_details")) or {}
    subscription = details.get("subscription") or obj.get("subscription")
    if isinstance(subscription, dict):  # expanded
        subscription = subscription.get("id")
    return (str(subscription) if subscription else None), dict(details.get("metadata") or {})


def _customer_id(obj: dict[str, Any]) -> str | None:
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    return str(customer) if customer else None


def _account_for_customer(session: Session, customer: str | None) -> BillingAccount | None:
    if not customer:
        return None
    # Locked, so two workers with events of one organisation take turns: the
    # snapshots and decisions below are read-modify-write.
    return session.exec(
        select(BillingAccount)
        .where(BillingAccount.stripe_customer_id == customer)
        .with_for_update()
    ).first()


def _subscription_row(
    session: Session, stripe_id: str | None, server_id: uuid.UUID | None
) -> BillingSubscription | None:
    row = None
    if stripe_id:
        row = session.exec(
            select(BillingSubscription).where(
                BillingSubscription.stripe_subscription_id == stripe_id
            )
        ).first()
    if row is None and server_id is not None:
        row = session.exec(
            select(BillingSubscription).where(BillingSubscription.server_id == server_id)
        ).first()
        # Checkout creates the subscription, so its id is learnt from the
        # first event that names it alongside Herd's server id.
        if row is not None and stripe_id and row.stripe_subscription_id is None:
            row.stripe_subscription_id = stripe_id
            session.add(row)
    return row


# -- applying snapshots -------------------------------------------------------------


def _apply_invoice(
    session: Session, event: StripeEvent, obj: dict[str, Any], account: BillingAccount | None
) -> uuid.UUID | None:
    invoice_id = str(obj.get("id") or "")
    status = str(obj.get("status") or "draft")
    if not invoice_id or status not in _INVOICE_RANK:
        return None
    subscription_id, sub_metadata = _invoice_subscription(obj)
    sub = _subscription_row(session, subscription_id, _metadata_server({"metadata": sub_metadata}))
    attempts = int(obj.get("attempt_count") or 0)
    row = session.exec(select(Invoice).where(Invoice.stripe_id == invoice_id)).first()
    version = (_INVOICE_RANK[status], attempts, event.created)
    if row is not None and version <= (
        _INVOICE_RANK.get(row.status, 0),
        row.attempt_count,
        row.snapshot_created,
    ):
        return row.organisation_id
    if row is None:
        row = Invoice(
            stripe_id=invoice_id, status=status, created=_ts(obj.get("created")) or _now_from(event)
        )
    if account is not None:
        row.organisation_id = account.organisation_id
    elif sub is not None:
        row.organisation_id = sub.organisation_id
    row.stripe_customer_id = _customer_id(obj)
    row.stripe_subscription_id = subscription_id
    row.number = obj.get("number")
    row.status = status
    row.attempt_count = attempts
    row.amount_due = int(obj.get("amount_due") or 0)
    row.amount_paid = int(obj.get("amount_paid") or 0)
    row.currency = str(obj.get("currency") or "eur")[:3]
    row.hosted_invoice_url = obj.get("hosted_invoice_url")
    row.invoice_pdf = obj.get("invoice_pdf")
    row.due_date = _ts(obj.get("due_date"))
    row.snapshot_created = event.created
    row.updated_at = _now_from(event)
    session.add(row)
    if sub is not None and status == "paid" and sub.paid_at is None:
        sub.paid_at = _ts(obj.get("status_transitions", {}).get("paid_at")) or _now_from(event)
        session.add(sub)
    if sub is None:
        contract_org = addon_state.fold_invoice(session, subscription_id, sub_metadata, obj)
        if row.organisation_id is None and contract_org is not None:
            row.organisation_id = contract_org
    return row.organisation_id


def _apply_subscription(
    session: Session, event: StripeEvent, obj: dict[str, Any]
) -> uuid.UUID | None:
    addon_org = addon_state.fold_subscription(session, event, obj)
    sub = _subscription_row(session, str(obj.get("id") or ""), _metadata_server(obj))
    if sub is None:
        return addon_org
    status = str(obj.get("status") or "")
    if event.type == "customer.subscription.deleted" and status not in ENDED:
        status = "canceled"
    if not status or sub.status in ENDED:
        return sub.organisation_id
    newer = (
        status in ENDED
        or sub.status_created is None
        or (event.created, event.id) > (sub.status_created, sub.status_event_id or "")
    )
    if not newer:
        return sub.organisation_id
    sub.status, sub.status_created, sub.status_event_id = status, event.created, event.id
    if status in ENDED:
        sub.ended_at = _ts(obj.get("ended_at")) or _ts(obj.get("canceled_at")) or _now_from(event)
    session.add(sub)
    return sub.organisation_id


def _apply_checkout(session: Session, obj: dict[str, Any]) -> uuid.UUID | None:
    if obj.get("mode") != "subscription":
        return None
    if "herd_addon_order_id" in (obj.get("metadata") or {}):
        return addon_state.fold_checkout(session, obj)
    subscription = obj.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    sub = _subscription_row(
        session, str(subscription) if subscription else None, _metadata_server(obj)
    )
    if sub is None:
        return None
    if subscription and sub.stripe_subscription_id is None:
        sub.stripe_subscription_id = str(subscription)
    # "paid" here means the first invoice is paid; the invoice.paid event
    # that says so too may come before or after this one.
    if obj.get("payment_status") == "paid" and sub.paid_at is None:
        sub.paid_at = _ts(obj.get("created")) or datetime.now(UTC)
    session.add(sub)
    return sub.organisation_id


def _now_from(event: StripeEvent) -> datetime:
    return datetime.fromtimestamp(event.created, UTC)


def fold_event(session: Session, event: StripeEvent, now: datetime) -> uuid.UUID | None:
    """Fold one stored event into the snapshots; returns the organisation whose
    state should be derived again, if any."""
    obj: dict[str, Any] = event.payload["data"]["object"]
    account = _account_for_customer(session, _customer_id(obj))
    if event.type in INVOICE_EVENTS:
        touched = _apply_invoice(session, event, obj, account)
    elif event.type in SUBSCRIPTION_EVENTS:
        touched = _apply_subscription(session, event, obj)
    elif event.type == "checkout.session.completed":
        touched = _apply_checkout(session, obj)
    else:
        return None
    # Whose state to derive again: the customer's organisation, else (a
    # customer Herd has no account for yet) the subscription row's.
    return account.organisation_id if account is not None else touched


# -- deriving what Herd does ----------------------------------------------------------


def _job_succeeded(session: Session, job_id: uuid.UUID | None) -> bool:
    job = session.get(Job, job_id) if job_id else None
    return job is not None and job.state == JobState.succeeded


def _create_job(session: Session, kind: str, server: Server) -> uuid.UUID:
    return start_host_job(session, server, kind, None)


def _record(
    session: Session, action: str, server_or_org: Server | uuid.UUID, details: dict[str, Any]
) -> None:
    if isinstance(server_or_org, Server):
        audit.record(
            session,
            None,
            action,
            "server",
            server_or_org.id,
            server_or_org.organisation_id,
            details,
            actor_label=ACTOR,
        )
    else:
        audit.record(
            session,
            None,
            action,
            "organisation",
            server_or_org,
            server_or_org,
            details,
            actor_label=ACTOR,
        )


def _reconcile_server(
    session: Session, sub: BillingSubscription, now: datetime, settings: BillingSettings
) -> None:
    server = session.get(Server, sub.server_id)
    if server is None or server.state == ServerState.deleted:
        return
    state = ServerState(server.state)
    if sub.status in ENDED:
        if state in {ServerState.requested, ServerState.awaiting_payment}:
            apply_event(session, server, "cancel", Actor.system, ACTOR, "subscription ended")
            _record(session, "billing.order_cancelled", server, {"subscription": sub.status})
            return
        if state not in {ServerState.active, ServerState.suspended, ServerState.failed}:
            return  # provisioning, upgrading, deprovisioning: decided next time
        if sub.final_backup_job_id is None:
            if state == ServerState.active:
                apply_event(session, server, "suspend", Actor.system, ACTOR, "subscription ended")
                sub.suspended_by_billing = True
            sub.final_backup_job_id = _create_job(session, "final_backup", server)
            session.add(sub)
            removal = (sub.ended_at or now) + timedelta(days=settings.billing_retention_days)
            _record(
                session,
                "billing.subscription_ended",
                server,
                {
                    "job_id": str(sub.final_backup_job_id),
                    "ended_at": str(sub.ended_at),
                    "deprovision_after": str(removal),
                },
            )
            org = session.get(Organisation, server.organisation_id)
            if org is not None:
                subject, body = dunning_mail.ended(org.name, server.domain, removal)
                _mail(session, org, subject, body, f"ended-{sub.id}")
            return
        ended_at = sub.ended_at or now
        due = ended_at + timedelta(days=settings.billing_retention_days)
        if (
            sub.deprovision_job_id is None
            and now >= due
            and _job_succeeded(session, sub.final_backup_job_id)
        ):
            apply_event(session, server, "decommission", Actor.system, ACTOR, "subscription ended")
            sub.deprovision_job_id = _create_job(session, "deprovision", server)
            session.add(sub)
            _record(session, "billing.deprovision", server, {"job_id": str(sub.deprovision_job_id)})
        return
    if sub.paid_at is None and sub.stripe_subscription_id:
        # An invoice paid before Herd learnt which subscription it was for
        # (Checkout makes the subscription) counts once the link is known.
        paid = session.exec(
            select(Invoice).where(
                Invoice.stripe_subscription_id == sub.stripe_subscription_id,
                Invoice.status == "paid",
            )
        ).first()
        if paid is not None:
            sub.paid_at = paid.updated_at
            session.add(sub)
    if sub.paid_at is not None and state == ServerState.awaiting_payment:
        apply_event(session, server, "paid", Actor.system, ACTOR)
        start_provisioning(session, server)
        _record(session, "billing.paid", server, {"subscription": sub.stripe_subscription_id})


def _delinquent(session: Session, org_id: uuid.UUID, live: set[str], now: datetime) -> bool:
    rows = session.exec(
        select(Invoice).where(Invoice.organisation_id == org_id, Invoice.status == "open")
    ).all()
    for invoice in rows:
        # An ended subscription's open invoice is the retention path's matter.
        if invoice.stripe_subscription_id and invoice.stripe_subscription_id not in live:
            continue
        if invoice.attempt_count > 0 or (invoice.due_date is not None and invoice.due_date <= now):
            return True
    return False


def _recipients(session: Session, org: Organisation) -> list[str]:
    emails = session.exec(
        select(User.email)
        .join(Membership, col(Membership.user_id) == User.id)
        .where(Membership.organisation_id == org.id, col(Membership.role).in_(["owner", "billing"]))
    ).all()
    return sorted({*(e for e in emails), *([org.billing_email] if org.billing_email else [])})


def _mail(session: Session, org: Organisation, subject: str, body: str, key: str) -> None:
    to = _recipients(session, org)
    if to:
        session.info.setdefault(MAIL_KEY, []).append(
            Mail(to, subject, body, f"<{key}@billing.herd>")
        )


def reconcile_organisation(
    session: Session, org_id: uuid.UUID, now: datetime, settings: BillingSettings | None = None
) -> None:
    """Bring an organisation's servers and dunning state in line with the
    snapshots held, as of `now`. Idempotent: a second call changes nothing."""
    settings = settings or get_billing_settings()
    account = session.exec(
        select(BillingAccount).where(BillingAccount.organisation_id == org_id).with_for_update()
    ).first()
    org = session.get(Organisation, org_id)
    if org is None:
        return
    subs = session.exec(
        select(BillingSubscription).where(BillingSubscription.organisation_id == org_id)
    ).all()
    for sub in subs:
        _reconcile_server(session, sub, now, settings)
    addon_state.reconcile(session, org_id, now)
    if account is None:
        return
    # Only hosting counts for dunning: an unpaid support contract is not
    # worth taking an organisation's servers down for; it simply stays
    # inactive until paid (and Stripe ends it if it never is).
    live = {
        s.stripe_subscription_id for s in subs if s.stripe_subscription_id and s.status not in ENDED
    }
    delinquent = _delinquent(session, org_id, live, now)
    if delinquent and account.status != "past_due":
        account.status, account.past_due_since, account.updated_at = "past_due", now, now
        session.add(account)
        _record(session, "billing.past_due", org_id, {"grace_days": settings.billing_grace_days})
        deadline = now + timedelta(days=settings.billing_grace_days)
        subject, body = dunning_mail.past_due(org.name, deadline)
        _mail(session, org, subject, body, f"past-due-{org_id}-{int(now.timestamp())}")
    elif not delinquent and account.status == "past_due":
        account.status, account.past_due_since, account.updated_at = "good", None, now
        session.add(account)
        _record(session, "billing.paid_up", org_id, {})
        resumed: list[str] = []
        for sub in subs:
            server = session.get(Server, sub.server_id)
            if (
                server is not None
                and sub.suspended_by_billing
                and sub.status not in ENDED
                and server.state == ServerState.suspended
            ):
                apply_event(session, server, "resume", Actor.system, ACTOR, "paid")
                sub.suspended_by_billing = False
                session.add(sub)
                job_id = _create_job(session, "resume", server)
                _record(session, "billing.resume", server, {"job_id": str(job_id)})
                resumed.append(server.domain)
        if resumed:
            subject, body = dunning_mail.resumed(org.name, resumed)
            _mail(session, org, subject, body, f"resumed-{org_id}-{int(now.timestamp())}")
    if (
        account.status == "past_due"
        and account.past_due_since is not None
        and now >= account.past_due_since + timedelta(days=settings.billing_grace_days)
    ):
        suspended: list[str] = []
        for sub in subs:
            server = session.get(Server, sub.server_id)
            if server is None or sub.status in ENDED or server.state != ServerState.active:
                continue
            apply_event(session, server, "suspend", Actor.system, ACTOR, "payment overdue")
            sub.suspended_by_billing = True
            session.add(sub)
            job_id = _create_job(session, "suspend", server)
            _record(session, "billing.suspend", server, {"job_id": str(job_id)})
            suspended.append(server.domain)
        if suspended:
            subject, body = dunning_mail.suspended(org.name, suspended)
            _mail(session, org, subject, body, f"suspended-{org_id}-{int(now.timestamp())}")


def process_event(session: Session, event_id: str, now: datetime) -> bool:
    """Process one stored event; False when it had been processed already.
    The caller commits; a failure rolls the whole event back for a retry."""
    event = session.get(StripeEvent, event_id)
    if event is None or event.processed_at is not None:
        return False
    org_id = fold_event(session, event, now)
    session.flush()
    if org_id is not None:
        reconcile_organisation(session, org_id, now)
    event.processed_at = now
    event.attempts += 1
    event.last_error = None
    session.add(event)
    return True


def organisations_to_tick(session: Session) -> list[uuid.UUID]:
    """Organisations whose state can change with time alone: past due ones
    (grace), and those with an ended or billing-suspended subscription
    (retention, pending jobs) or an open invoice (due dates)."""
    past_due = session.exec(
        select(BillingAccount.organisation_id).where(BillingAccount.status == "past_due")
    ).all()
    ended = session.exec(
        select(BillingSubscription.organisation_id).where(
            col(BillingSubscription.status).in_(ENDED)
            | col(BillingSubscription.suspended_by_billing)
        )
    ).all()
    open_invoices = session.exec(
        select(Invoice.organisation_id).where(
            Invoice.status == "open", col(Invoice.organisation_id).is_not(None)
        )
    ).all()
    return sorted({*past_due, *ended, *(o for o in open_invoices if o is not None)})


def take_mail(session: Session) -> list[Mail]:
    return list(session.info.pop(MAIL_KEY, []))
