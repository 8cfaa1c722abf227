"""Stripe events as Stripe would sign and send them, for what localstripe
cannot produce (Checkout, current-API invoice shapes), and a fake gateway
that records Herd's writes with their idempotency keys."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from controlplane.billing.stripe_client import CheckoutSession, CreatedItem, CreatedSubscription
from controlplane.billing.webhooks import sign

WEBHOOK_SECRET = "whsec_test_0123456789abcdefghijklmnop"
WEBHOOK_PATH = "/api/v1/billing/stripe/webhook"
_seq = itertools.count(1)


def event(kind: str, obj: dict[str, Any], created: int | None = None) -> dict[str, Any]:
    return {
        "id": f"evt_{next(_seq):010d}",
        "object": "event",
        "api_version": "2025-09-30.clover",
        "type": kind,
        "created": created if created is not None else int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def invoice(
    invoice_id: str,
    customer: str,
    subscription: str,
    status: str,
    attempt_count: int = 0,
    server_id: str | None = None,
    amount: int = 4900,
) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "status": status,
        "attempt_count": attempt_count,
        "amount_due": amount,
        "amount_paid": amount if status == "paid" else 0,
        "currency": "eur",
        "number": f"HERD-{invoice_id[-4:]}",
        "created": int(time.time()),
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{invoice_id}",
        "invoice_pdf": f"https://pay.stripe.com/invoice/{invoice_id}/pdf",
        "parent": {
            "type": "subscription_details",
            "subscription_details": {
                "subscription": subscription,
                "metadata": {"herd_server_id": server_id} if server_id else {},
            },
        },
    }


def subscription(sub_id: str, customer: str, status: str, server_id: str) -> dict[str, Any]:
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "metadata": {"herd_server_id": server_id},
        "ended_at": int(time.time()) if status == "canceled" else None,
    }


def checkout_completed(session_id: str, customer: str, sub_id: str, server_id: str) -> dict:
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": "subscription",
        "customer": customer,
        "subscription": sub_id,
        "client_reference_id": server_id,
        "payment_status": "paid",
        "metadata": {"herd_server_id": server_id},
        "created": int(time.time()),
    }


def signed(body: dict[str, Any], secret: str = WEBHOOK_SECRET, at: int | None = None):
    payload = json.dumps(body).encode()
    header = sign(payload, secret, at if at is not None else int(time.time()))
    return payload, {"Stripe-Signature": header, "Content-Type": "application/json"}


@dataclass
class FakeGateway:
    """Stripe for tests that need no Stripe: ids handed out per idempotency
    key, so a replayed key answers as Stripe would, with the first result."""

    calls: list[tuple[str, str]] = field(default_factory=list)
    by_key: dict[str, Any] = field(default_factory=dict)

    def _once(self, what: str, key: str, make: Any) -> Any:
        self.calls.append((what, key))
        if key not in self.by_key:
            self.by_key[key] = make()
        return self.by_key[key]

    def ensure_product(self, product_id: str, name: str, metadata: dict[str, str]) -> str:
        self.calls.append(("product", product_id))
        return product_id

    def create_price(self, product_id, amount_cents, currency, interval, metadata, key) -> str:
        return self._once("price", key, lambda: f"price_{next(_seq)}")

    def create_customer(self, name, email, metadata, key) -> str:
        return self._once("customer", key, lambda: f"cus_{next(_seq)}")

    def create_subscription(self, customer_id, price_ids, metadata, method, days, key):
        return self._once(
            "subscription", key, lambda: CreatedSubscription(f"sub_{next(_seq)}", "active")
        )

    def create_checkout_session(self, customer_id, price_ids, metadata, ok, cancel, ref, key):
        return self._once(
            "checkout",
            key,
            lambda: CheckoutSession(f"cs_{next(_seq)}", f"https://checkout.stripe.com/{ref}"),
        )

    def change_subscription_price(self, subscription_id, price_id, key) -> None:
        self._once("plan_change", key, lambda: None)

    def add_subscription_item(self, subscription_id, price_id, metadata, key) -> CreatedItem:
        return self._once("item", key, lambda: CreatedItem(f"si_{next(_seq)}", int(time.time())))

    def remove_subscription_item(self, item_id, key) -> None:
        self._once("item_delete", key, lambda: None)

    def cancel_subscription(self, subscription_id, at_period_end, key) -> None:
        what = "cancel_at_period_end" if at_period_end else "cancel"
        self._once(what, key, lambda: None)
