"""Billing's Celery tasks: thin, each passes an id to controlplane.billing.work."""

from __future__ import annotations

import uuid
from typing import Any

import controlplane.models  # noqa: F401  (every table, for the foreign keys)
from controlplane.billing import work
from controlplane.billing.stripe_client import StripeUnavailable
from controlplane.db import get_engine
from provisioning.celery_app import celery_app

# Tasks that call Stripe: taken again if the worker dies (acks_late), and
# retried with backoff while Stripe is unreachable; their work is keyed by
# Herd's ids, so a second run changes nothing.
_STRIPE_CALL: dict[str, Any] = {
    "acks_late": True,
    "ignore_result": True,
    "autoretry_for": (StripeUnavailable,),
    "retry_backoff": 10,
    "retry_backoff_max": 600,
    "max_retries": 10,
    "time_limit": 120,
    "soft_time_limit": 100,
}


@celery_app.task(
    name=work.PROCESS_EVENT_TASK,
    acks_late=True,
    ignore_result=True,
    autoretry_for=(Exception,),
    retry_backoff=5,
    retry_backoff_max=600,
    max_retries=8,
    time_limit=120,
    soft_time_limit=100,
)
def process_event(event_id: str) -> bool:
    return work.process_event(get_engine(), event_id)


@celery_app.task(
    name=work.SUBSCRIBE_TASK,
    **_STRIPE_CALL,
)
def subscribe(server_id: str) -> None:
    work.subscribe(get_engine(), uuid.UUID(server_id))


@celery_app.task(
    name=work.ADDON_TASK,
    **_STRIPE_CALL,
)
def apply_addon(order_id: str) -> None:
    work.apply_addon(get_engine(), uuid.UUID(order_id))


@celery_app.task(name="herd.billing.tick", ignore_result=True, time_limit=600, soft_time_limit=540)
def tick() -> dict[str, int]:
    return work.tick(get_engine())
