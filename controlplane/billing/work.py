"""Units of work for billing's workers: process a stored event, make an
order's subscription, run the dunning tick. Each opens its own session,
commits once, and only then sends the mail it decided on, so a rolled-back
attempt tells no one anything."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from controlplane.billing import addons, reconcile, subscriptions, webhooks
from controlplane.billing.models import AddOnOrder, StripeEvent
from controlplane.billing.settings import get_billing_settings
from controlplane.notifications import MailNotConfigured, send_mail
from controlplane.sqltypes import utcnow

log = logging.getLogger(__name__)
PROCESS_EVENT_TASK = "herd.billing.process_event"
SUBSCRIBE_TASK = "herd.billing.subscribe"
ADDON_TASK = "herd.billing.addon"


def _send(task: str, argument: str) -> None:
    from provisioning.celery_app import celery_app

    try:
        celery_app.send_task(task, args=[argument])
    except Exception:  # noqa: BLE001 - any broker failure: the tick resends
        log.warning("could not send %s(%s) to the broker; the billing tick will", task, argument)


@event.listens_for(OrmSession, "after_commit")
def _after_commit(session: OrmSession) -> None:
    # Sent only once the rows they read have committed (Celery discipline).
    for event_id in webhooks.queued_events(session):  # type: ignore[arg-type]
        _send(PROCESS_EVENT_TASK, event_id)
    for server_id in subscriptions.queued_subscriptions(session):  # type: ignore[arg-type]
        _send(SUBSCRIBE_TASK, str(server_id))
    for order_id in addons.queued_orders(session):  # type: ignore[arg-type]
        _send(ADDON_TASK, str(order_id))


@event.listens_for(OrmSession, "after_rollback")
def _after_rollback(session: OrmSession) -> None:
    session.info.pop(webhooks._DISPATCH_KEY, None)
    session.info.pop(subscriptions.SUBSCRIBE_KEY, None)
    session.info.pop(addons.ORDERS_KEY, None)
    session.info.pop(reconcile.MAIL_KEY, None)


def _deliver(mail: list[reconcile.Mail]) -> None:
    for message in mail:
        try:
            send_mail(message.to, message.subject, message.body, message_id=message.message_id)
        except MailNotConfigured:
            log.warning("billing mail not sent (SMTP not configured): %s", message.subject)
        except OSError as error:
            # The state change stands; the audit log and the API show it.
            log.warning("billing mail not sent: %s", error)


def process_event(engine: Engine, event_id: str, now: datetime | None = None) -> bool:
    """Process one stored event; on failure record the attempt and re-raise
    so the task retries."""
    try:
        with Session(engine, expire_on_commit=False) as session:
            done = reconcile.process_event(session, event_id, now or utcnow())
            mail = reconcile.take_mail(session)
            session.commit()
    except Exception as error:
        with Session(engine) as session:
            row = session.get(StripeEvent, event_id)
            if row is not None and row.processed_at is None:
                row.attempts += 1
                row.last_error = f"{type(error).__name__}: {error}"[:500]
                session.add(row)
                session.commit()
        raise
    _deliver(mail)
    return done


def subscribe(engine: Engine, server_id: uuid.UUID) -> None:
    with Session(engine, expire_on_commit=False) as session:
        subscriptions.subscribe(session, server_id)
        session.commit()


def apply_addon(engine: Engine, order_id: uuid.UUID) -> None:
    with Session(engine, expire_on_commit=False) as session:
        addons.apply(session, order_id)
        session.commit()


def tick(
    engine: Engine,
    now: datetime | None = None,
    send: Callable[[str, str], None] = _send,
) -> dict[str, int]:
    """The periodic part of dunning: grace and retention periods expire and
    due dates pass with time alone. Also resends events a lost broker
    message left unprocessed."""
    now = now or utcnow()
    settings = get_billing_settings()
    with Session(engine, expire_on_commit=False) as session:
        org_ids = reconcile.organisations_to_tick(session)
    for org_id in org_ids:
        with Session(engine, expire_on_commit=False) as session:
            reconcile.reconcile_organisation(session, org_id, now, settings)
            mail = reconcile.take_mail(session)
            session.commit()
        _deliver(mail)
    with Session(engine) as session:
        pending = session.exec(
            select(StripeEvent.id)
            .where(
                col(StripeEvent.processed_at).is_(None),
                StripeEvent.attempts < settings.billing_event_attempts,
            )
            .order_by(col(StripeEvent.received_at))
            .limit(1000)
        ).all()
    for event_id in pending:
        send(PROCESS_EVENT_TASK, event_id)
    with Session(engine) as session:
        # Add-on orders whose Stripe write a lost message may have left
        # undone; applying one that is done is a no-op (or a replay).
        orders = session.exec(
            select(AddOnOrder.id)
            .where(col(AddOnOrder.status).in_(["pending", "cancelling"]))
            .order_by(col(AddOnOrder.id))
            .limit(1000)
        ).all()
    for order_id in orders:
        send(ADDON_TASK, str(order_id))
    return {"organisations": len(org_ids), "resent": len(pending) + len(orders)}
