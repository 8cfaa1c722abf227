"""Ordering and cancelling add-ons, and asking whether one is in force.

Moderation staffing is per server and billed monthly, like the plans, so it
becomes a second item on the server's own subscription (Stripe prorates the
rest of the period onto the next invoice). A support contract is per
organisation and billed yearly; items of different intervals cannot share a
subscription, so each contract has its own.

As with server orders, a request records the intent and a worker makes the
Stripe write once it has committed (`apply`), under idempotency keys built
from the order's id, so a retried task replays Stripe's first answer. Whether
an order is in force is then decided by reconcile from the snapshots Stripe
sends (controlplane/billing/addon_state.py).
"""

from __future__ import annotations

import uuid

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm
from controlplane.billing.models import AddOn, AddOnOrder, BillingSubscription
from controlplane.billing.reconcile import ENDED
from controlplane.billing.settings import get_billing_settings
from controlplane.billing.stripe_client import StripeRejected, gateway
from controlplane.billing.subscriptions import account_for, ensure_customer
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import Conflict, NotFound
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Organisation

# The catalogue codes later work asks about (moderation teams, support
# bundles); the catalogue may hold other add-ons, ordered the same way.
MODERATION = "moderation"
SUPPORT = "support"
ORDERS_KEY = "herd_billing_addon_orders"
LIVE = ("pending", "active", "cancelling")
# A server that will not run again takes no new add-on.
_ORDERABLE_SERVER_STATES = frozenset(
    {ServerState.provisioning, ServerState.active, ServerState.upgrading, ServerState.suspended}
)


def moderation_active(session: Session, server_id: uuid.UUID) -> bool:
    """Does this server have moderation staffing in force?"""
    return _in_force(session, MODERATION, AddOnOrder.server_id == server_id)


def support_contract_active(session: Session, org_id: uuid.UUID) -> bool:
    """Does this organisation have a support contract in force?"""
    return _in_force(
        session,
        SUPPORT,
        (AddOnOrder.organisation_id == org_id) & col(AddOnOrder.server_id).is_(None),
    )


def _in_force(session: Session, code: str, target: object) -> bool:
    # A paid order being cancelled is still in force: it was paid for until
    # its period ends.
    row = session.exec(
        select(AddOnOrder.id)
        .join(AddOn, col(AddOn.id) == AddOnOrder.addon_id)
        .where(
            AddOn.code == code,
            target,  # type: ignore[arg-type]
            col(AddOnOrder.status).in_(["active", "cancelling"]),
            col(AddOnOrder.paid_at).is_not(None),
        )
    ).first()
    return row is not None


def _live_key(addon: AddOn, target_id: uuid.UUID) -> str:
    return f"{addon.id}:{target_id}"


def _addon(session: Session, code: str, per: str, active_only: bool = True) -> AddOn:
    statement = select(AddOn).where(AddOn.code == code, AddOn.per == per)
    if active_only:
        statement = statement.where(col(AddOn.active))
    addon = session.exec(statement).first()
    if addon is None:
        raise NotFound(
            f"there is no add-on '{code}' for {'servers' if per == 'server' else 'organisations'}"
        )
    return addon


def _server(session: Session, principal: Principal, server_id: uuid.UUID, perm: Perm) -> Server:
    server = session.get(Server, server_id)
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("server not found")
    principal.require(server.organisation_id, perm, "server")
    return server


def _organisation(session: Session, principal: Principal, org_id: uuid.UUID, perm: Perm) -> None:
    principal.require(org_id, perm)
    if session.get(Organisation, org_id) is None:  # staff "see" any id
        raise NotFound("organisation not found")


def _live_order(session: Session, addon: AddOn, target_id: uuid.UUID) -> AddOnOrder | None:
    return session.exec(
        select(AddOnOrder).where(AddOnOrder.live_key == _live_key(addon, target_id))
    ).first()


def _record(
    session: Session, principal: Principal | None, action: str, order: AddOnOrder, code: str
) -> None:
    target_type, target_id = (
        ("server", order.server_id) if order.server_id else ("organisation", order.organisation_id)
    )
    audit.record(
        session,
        principal,
        action,
        target_type,
        target_id,
        order.organisation_id,
        {"addon": code, "order_id": str(order.id)},
        actor_label=None if principal else "billing",
    )


def _create(
    session: Session,
    principal: Principal,
    addon: AddOn,
    org_id: uuid.UUID,
    server_id: uuid.UUID | None,
    subscription_id: str | None,
) -> AddOnOrder:
    target_id = server_id or org_id
    if _live_order(session, addon, target_id) is not None:
        raise Conflict(f"add-on '{addon.code}' is ordered already")
    if addon.stripe_price_id is None:
        raise Conflict(f"add-on '{addon.code}' is not in Stripe yet; staff run `herd billing sync`")
    order = AddOnOrder(
        addon_id=addon.id,
        organisation_id=org_id,
        server_id=server_id,
        live_key=_live_key(addon, target_id),
        stripe_subscription_id=subscription_id,
    )
    try:
        # A racing order for the same target hits the unique live key.
        with session.begin_nested():
            session.add(order)
    except IntegrityError:
        raise Conflict(f"add-on '{addon.code}' is ordered already") from None
    account_for(session, org_id)
    _record(session, principal, "billing.addon_order", order, addon.code)
    session.info.setdefault(ORDERS_KEY, []).append(order.id)
    return order


def order_for_server(
    session: Session, principal: Principal, server_id: uuid.UUID, code: str
) -> AddOnOrder:
    server = _server(session, principal, server_id, Perm.billing_manage)
    addon = _addon(session, code, "server")
    if addon.interval != "month":
        # Plans are monthly; another interval could not share the server's
        # subscription, and a per-server subscription of its own is not offered.
        raise Conflict(f"add-on '{code}' is billed per {addon.interval}, unlike the server")
    if server.state not in _ORDERABLE_SERVER_STATES:
        raise Conflict(f"a server that is {server.state} takes no add-ons")
    sub = session.exec(
        select(BillingSubscription).where(BillingSubscription.server_id == server.id)
    ).first()
    if sub is None or sub.stripe_subscription_id is None or sub.status in ENDED:
        raise Conflict("the server has no live subscription to add this to")
    return _create(
        session, principal, addon, server.organisation_id, server.id, sub.stripe_subscription_id
    )


def order_for_organisation(
    session: Session, principal: Principal, org_id: uuid.UUID, code: str
) -> AddOnOrder:
    _organisation(session, principal, org_id, Perm.billing_manage)
    if not get_billing_settings().enabled:
        raise Conflict("billing through Stripe is not switched on")
    return _create(session, principal, _addon(session, code, "organisation"), org_id, None, None)


def _cancel(
    session: Session, principal: Principal, addon: AddOn, target_id: uuid.UUID
) -> AddOnOrder:
    order = _live_order(session, addon, target_id)
    if order is None:
        raise NotFound(f"add-on '{addon.code}' is not ordered")
    if order.cancel_requested_at is not None:
        return order  # asked already: the same answer, nothing new
    order.cancel_requested_at = order.updated_at = utcnow()
    order.status = "cancelling"
    session.add(order)
    _record(session, principal, "billing.addon_cancel", order, addon.code)
    session.info.setdefault(ORDERS_KEY, []).append(order.id)
    return order


def cancel_for_server(
    session: Session, principal: Principal, server_id: uuid.UUID, code: str
) -> AddOnOrder:
    server = _server(session, principal, server_id, Perm.billing_manage)
    return _cancel(session, principal, _addon(session, code, "server", False), server.id)


def cancel_for_organisation(
    session: Session, principal: Principal, org_id: uuid.UUID, code: str
) -> AddOnOrder:
    _organisation(session, principal, org_id, Perm.billing_manage)
    return _cancel(session, principal, _addon(session, code, "organisation", False), org_id)


def list_for_server(
    session: Session, principal: Principal, server_id: uuid.UUID, page: PageRequest
) -> tuple[list[tuple[AddOnOrder, str]], str | None]:
    server = _server(session, principal, server_id, Perm.billing_read)
    return _list(session, AddOnOrder.server_id == server.id, page)


def list_for_organisation(
    session: Session, principal: Principal, org_id: uuid.UUID, page: PageRequest
) -> tuple[list[tuple[AddOnOrder, str]], str | None]:
    """Every add-on order of the organisation, its servers' included."""
    _organisation(session, principal, org_id, Perm.billing_read)
    return _list(session, AddOnOrder.organisation_id == org_id, page)


def _list(
    session: Session, where: object, page: PageRequest
) -> tuple[list[tuple[AddOnOrder, str]], str | None]:
    statement = (
        select(AddOnOrder, AddOn.code)
        .join(AddOn, col(AddOn.id) == AddOnOrder.addon_id)
        .where(where)  # type: ignore[arg-type]
    )
    rows = session.exec(paginate(statement, AddOnOrder.id, page)).all()
    items, cursor = finish_page(rows, page, lambda row: row[0].id)
    return [(order, code) for order, code in items], cursor


def list_catalogue(session: Session) -> list[AddOn]:
    return list(session.exec(select(AddOn).where(col(AddOn.active)).order_by(col(AddOn.code))))


def queued_orders(session: Session) -> list[uuid.UUID]:
    return list(session.info.pop(ORDERS_KEY, []))


# -- the worker's side ----------------------------------------------------------------


def apply(session: Session, order_id: uuid.UUID) -> None:
    """Make the Stripe write an order or its cancellation needs. Idempotent:
    what is done already is not done again, and a repeated write replays
    Stripe's first answer for the same key."""
    order = session.exec(
        select(AddOnOrder).where(AddOnOrder.id == order_id).with_for_update()
    ).first()
    if order is None or order.status == "ended":
        return
    addon = session.get(AddOn, order.addon_id)
    assert addon is not None
    if order.cancel_requested_at is not None:
        _apply_cancel(session, order, addon)
    elif order.server_id is not None:
        _add_item(session, order, addon)
    else:
        _subscribe(session, order, addon)


def _metadata(order: AddOnOrder, addon: AddOn) -> dict[str, str]:
    metadata = {
        "herd_addon_order_id": str(order.id),
        "herd_addon": addon.code,
        "herd_organisation_id": str(order.organisation_id),
    }
    if order.server_id:
        metadata["herd_server_id"] = str(order.server_id)
    return metadata


def _add_item(session: Session, order: AddOnOrder, addon: AddOn) -> None:
    if order.stripe_item_id is not None:
        return
    if order.stripe_subscription_id is None or addon.stripe_price_id is None:
        raise StripeRejected(f"add-on order {order.id} has no subscription or price")
    item = gateway().add_subscription_item(
        order.stripe_subscription_id,
        addon.stripe_price_id,
        _metadata(order, addon),
        f"herd-addon-item-{order.id}",
    )
    order.stripe_item_id, order.stripe_item_created = item.id, item.created
    # The server's subscription is paid for; the item is in force from now
    # and its prorated share is on the next invoice.
    order.status, order.paid_at, order.updated_at = "active", utcnow(), utcnow()
    session.add(order)
    _record(session, None, "billing.addon_active", order, addon.code)


def _subscribe(session: Session, order: AddOnOrder, addon: AddOn) -> None:
    if order.stripe_subscription_id or order.checkout_session_id:
        return
    if addon.stripe_price_id is None:
        raise StripeRejected(f"add-on '{addon.code}' has no Stripe price; run `herd billing sync`")
    org = session.get(Organisation, order.organisation_id)
    assert org is not None
    account = ensure_customer(session, org)
    assert account.stripe_customer_id is not None
    metadata = _metadata(order, addon)
    if account.collection_method == "send_invoice":
        created = gateway().create_subscription(
            account.stripe_customer_id,
            [addon.stripe_price_id],
            metadata,
            "send_invoice",
            account.days_until_due,
            f"herd-addon-subscription-{order.id}",
        )
        order.stripe_subscription_id = created.id
    else:
        settings = get_billing_settings()
        checkout = gateway().create_checkout_session(
            account.stripe_customer_id,
            [addon.stripe_price_id],
            metadata,
            settings.billing_success_url,
            settings.billing_cancel_url,
            str(order.id),
            f"herd-addon-checkout-{order.id}",
        )
        order.checkout_session_id, order.checkout_url = checkout.id, checkout.url
    order.updated_at = utcnow()
    session.add(order)


def _apply_cancel(session: Session, order: AddOnOrder, addon: AddOn) -> None:
    if order.server_id is not None:
        if order.stripe_item_id is not None:
            gateway().remove_subscription_item(
                order.stripe_item_id, f"herd-addon-item-delete-{order.id}"
            )
        _end(session, order, addon)
        return
    if order.stripe_subscription_id is None:
        # Never subscribed (Checkout not completed): nothing runs in Stripe.
        _end(session, order, addon)
        return
    if order.paid_at is None:
        # Nothing paid: the subscription ends now.
        gateway().cancel_subscription(
            order.stripe_subscription_id, False, f"herd-addon-cancel-{order.id}"
        )
        _end(session, order, addon)
        return
    # A paid contract runs to the end of its year; Stripe ends it then and
    # customer.subscription.deleted ends the order.
    gateway().cancel_subscription(
        order.stripe_subscription_id, True, f"herd-addon-cancel-{order.id}"
    )


def _end(session: Session, order: AddOnOrder, addon: AddOn) -> None:
    order.status, order.live_key = "ended", None
    order.ended_at = order.updated_at = utcnow()
    session.add(order)
    _record(session, None, "billing.addon_ended", order, addon.code)
    if order.server_id is not None:
        # Imported here: moderation builds on billing, not the other way.
        from controlplane.moderation.service import addon_ended

        addon_ended(session, order.server_id)
