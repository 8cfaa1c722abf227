"""Receiving Stripe's webhook deliveries: verify, store once, hand on.

The endpoint does as little as it can, so Stripe is answered fast: it
checks the signature, stores the event under Stripe's id (a redelivery
finds it there and is acknowledged without a second row), and leaves the
work to a worker once the row has committed.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from controlplane.billing.models import StripeEvent
from controlplane.billing.settings import BillingSettings, get_billing_settings
from controlplane.problems import HerdError

log = logging.getLogger(__name__)
_DISPATCH_KEY = "herd_stripe_events_to_process"


class BadSignature(HerdError):
    status, kind, title = 400, "bad-signature", "Webhook signature not valid"


class BadEvent(HerdError):
    status, kind, title = 400, "bad-event", "Not a Stripe event"


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The Stripe-Signature header Stripe would send (for tests and tools)."""
    digest = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256
    ).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(
    payload: bytes,
    header: str | None,
    secret: str,
    tolerance_seconds: int,
    now: Callable[[], float] = time.time,
) -> None:
    """Stripe's scheme: HMAC-SHA256 over "<t>.<body>" with the endpoint's
    secret, in one or more v1 entries (several during a secret's rotation);
    a timestamp outside the tolerance is a replay, however well signed."""
    if not header:
        raise BadSignature("the Stripe-Signature header is missing")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise BadSignature("the Stripe-Signature timestamp is not a number") from None
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise BadSignature("the Stripe-Signature header has no timestamp or no v1 signature")
    expected = sign(payload, secret, timestamp).rpartition("v1=")[2]
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise BadSignature("no signature matches the payload and the endpoint's secret")
    if abs(now() - timestamp) > tolerance_seconds:
        raise BadSignature(f"the signature is older than {tolerance_seconds} s (a replay?)")


def receive(
    session: Session,
    payload: bytes,
    header: str | None,
    settings: BillingSettings | None = None,
    now: Callable[[], float] = time.time,
) -> tuple[StripeEvent, bool]:
    """Verify a delivery and store its event; returns (event, is_new). The
    event is processed by a worker once the caller's transaction commits."""
    settings = settings or get_billing_settings()
    if settings.stripe_webhook_secret is None:
        # Without a secret nothing can be verified, so nothing is accepted.
        raise BadSignature("this endpoint has no webhook secret configured")
    verify(
        payload,
        header,
        settings.stripe_webhook_secret.get_secret_value(),
        settings.stripe_webhook_tolerance_seconds,
        now,
    )
    try:
        body: Any = json.loads(payload)
    except ValueError:
        raise BadEvent("the body is not JSON") from None
    if not (
        isinstance(body, dict)
        and isinstance(body.get("id"), str)
        and body.get("object") == "event"
        and isinstance(body.get("type"), str)
        and isinstance(body.get("created"), int)
        and isinstance(body.get("data"), dict)
        and isinstance(body["data"].get("object"), dict)
    ):
        raise BadEvent("the body is not a Stripe event (id, type, created, data.object)")
    existing = session.get(StripeEvent, body["id"])
    if existing is not None:
        return existing, False
    event = StripeEvent(
        id=body["id"][:255], type=body["type"][:100], created=body["created"], payload=body
    )
    try:
        # A savepoint, so a racing delivery of the same event (two workers of
        # the API) ends as a duplicate here rather than as a 500.
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        existing = session.get(StripeEvent, body["id"])
        assert existing is not None
        return existing, False
    session.info.setdefault(_DISPATCH_KEY, []).append(event.id)
    return event, True


def queued_events(session: Session) -> list[str]:
    """The events stored in this unit of work, to send once it commits."""
    return list(session.info.pop(_DISPATCH_KEY, []))
