"""Add-on orders from Stripe's snapshots, whatever order they arrive in.

As in reconcile.py, events only fold snapshots into the order rows (a
contract subscription's status, kept only when newer; the first paid
invoice; the subscription Checkout made), and what an order is follows from
the rows held:

- a support contract is active once an invoice of its subscription is paid,
  and ended once its subscription's newest snapshot has ended;
- moderation staffing is active from when its item is on the server's
  subscription, and ends with that subscription, or when a snapshot of the
  subscription newer than the item no longer lists it (removed in Stripe).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.billing.models import AddOn, AddOnOrder, BillingSubscription, Invoice
from controlplane.billing.models import StripeEvent as Event

ENDED = frozenset({"canceled", "incomplete_expired"})


def _order_id(metadata: Any) -> uuid.UUID | None:
    raw = (metadata or {}).get("herd_addon_order_id") if isinstance(metadata, dict) else None
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


def _contract(
    session: Session, stripe_id: str | None, order_id: uuid.UUID | None
) -> AddOnOrder | None:
    """The organisation-level order a subscription belongs to, learning the
    subscription's id from the first event naming both."""
    row = None
    if stripe_id:
        row = session.exec(
            select(AddOnOrder).where(
                AddOnOrder.stripe_subscription_id == stripe_id,
                col(AddOnOrder.server_id).is_(None),
            )
        ).first()
    if row is None and order_id is not None:
        row = session.get(AddOnOrder, order_id)
        if row is None or row.server_id is not None:
            return None
        if stripe_id and row.stripe_subscription_id is None:
            row.stripe_subscription_id = stripe_id
            session.add(row)
    return row


def fold_subscription(session: Session, event: Event, obj: dict[str, Any]) -> uuid.UUID | None:
    stripe_id = str(obj.get("id") or "")
    order = _contract(session, stripe_id, _order_id(obj.get("metadata")))
    if order is not None:
        status = str(obj.get("status") or "")
        if event.type == "customer.subscription.deleted" and status not in ENDED:
            status = "canceled"
        if not status or order.stripe_status in ENDED:
            return order.organisation_id
        if (
            status in ENDED
            or order.status_created is None
            or (event.created, event.id) > (order.status_created, order.status_event_id or "")
        ):
            order.stripe_status, order.status_created = status, event.created
            order.status_event_id = event.id
            session.add(order)
        return order.organisation_id
    # The server's subscription: an item Herd added and the snapshot, newer
    # than the item, no longer lists was removed in Stripe.
    items = obj.get("items")
    if not stripe_id or not isinstance(items, dict):
        return None
    present = {str(i.get("id")) for i in items.get("data") or [] if isinstance(i, dict)}
    touched = None
    for order in session.exec(
        select(AddOnOrder).where(
            AddOnOrder.stripe_subscription_id == stripe_id,
            col(AddOnOrder.stripe_item_id).is_not(None),
            AddOnOrder.status != "ended",
        )
    ).all():
        if order.stripe_item_id not in present and event.created > (order.stripe_item_created or 0):
            order.stripe_status = "item_removed"
            session.add(order)
            touched = order.organisation_id
    return touched


def fold_invoice(
    session: Session, subscription_id: str | None, metadata: dict[str, Any], obj: dict[str, Any]
) -> uuid.UUID | None:
    order = _contract(session, subscription_id, _order_id(metadata))
    if order is None:
        return None
    if obj.get("status") == "paid" and order.paid_at is None:
        paid = (obj.get("status_transitions") or {}).get("paid_at")
        order.paid_at = datetime.fromtimestamp(paid, UTC) if isinstance(paid, int) else None
        order.paid_at = order.paid_at or datetime.now(UTC)
        session.add(order)
    return order.organisation_id


def fold_checkout(session: Session, obj: dict[str, Any]) -> uuid.UUID | None:
    subscription = obj.get("subscription")
    if isinstance(subscription, dict):
        subscription = subscription.get("id")
    order = _contract(
        session, str(subscription) if subscription else None, _order_id(obj.get("metadata"))
    )
    if order is None:
        return None
    if obj.get("payment_status") == "paid" and order.paid_at is None:
        order.paid_at = datetime.now(UTC)
        session.add(order)
    return order.organisation_id


def _record(session: Session, order: AddOnOrder, action: str, details: dict[str, Any]) -> None:
    addon = session.get(AddOn, order.addon_id)
    target = (
        ("server", order.server_id) if order.server_id else ("organisation", order.organisation_id)
    )
    audit.record(
        session,
        None,
        action,
        target[0],
        target[1],
        order.organisation_id,
        {"addon": addon.code if addon else "?", "order_id": str(order.id), **details},
        actor_label="billing",
    )


def _end(session: Session, order: AddOnOrder, now: datetime, why: str) -> None:
    order.status, order.live_key, order.ended_at, order.updated_at = "ended", None, now, now
    session.add(order)
    _record(session, order, "billing.addon_ended", {"reason": why})
    if order.server_id is not None:
        # Imported here: moderation builds on billing, not the other way.
        from controlplane.moderation.service import addon_ended

        addon_ended(session, order.server_id)


def reconcile(session: Session, org_id: uuid.UUID, now: datetime) -> None:
    """Bring the organisation's add-on orders in line with the snapshots
    held. Idempotent."""
    orders = session.exec(
        select(AddOnOrder).where(AddOnOrder.organisation_id == org_id, AddOnOrder.status != "ended")
    ).all()
    for order in orders:
        if order.server_id is not None:
            sub = session.exec(
                select(BillingSubscription).where(BillingSubscription.server_id == order.server_id)
            ).first()
            if sub is None or sub.status in ENDED:
                _end(session, order, now, "the server's subscription ended")
            elif order.stripe_status == "item_removed":
                _end(session, order, now, "removed from the subscription in Stripe")
            continue
        if order.stripe_status in ENDED:
            _end(session, order, now, "the subscription ended")
            continue
        if order.paid_at is None and order.stripe_subscription_id:
            # Paid before Herd learnt which subscription was the order's.
            paid = session.exec(
                select(Invoice.id).where(
                    Invoice.stripe_subscription_id == order.stripe_subscription_id,
                    Invoice.status == "paid",
                )
            ).first()
            if paid is not None:
                order.paid_at = now
        if order.paid_at is not None and order.status == "pending":
            order.status, order.updated_at = "active", now
            _record(session, order, "billing.addon_active", {})
        session.add(order)
