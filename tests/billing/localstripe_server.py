"""localstripe for the billing tests: a child process serving localstripe's
aiohttp app on 127.0.0.1 only, with a test-only shim for what it lacks.

The product code speaks Stripe's current API through the real `stripe` SDK;
localstripe (1.15) predates parts of it. The shim, which lives here and only
here, bridges the gap inside the localstripe process:

- prices: `POST /v1/prices` makes a localstripe plan whose id starts with
  `price_` (Stripe's prices and plans share ids), and subscriptions given
  `items[][price]` get `items[][plan]`;
- parameters localstripe refuses are dropped or emulated: `proration_behavior`
  on update (localstripe prorates anyway), `collection_method=send_invoice`
  with `days_until_due` (the first invoice is left open, not charged);
- Checkout: `POST /v1/checkout/sessions` records a session, and the test
  plays the customer on the hosted page with `POST /_shim/checkout/<id>/complete`
  (attach the card, make the subscription, which localstripe charges);
- `Idempotency-Key`: a POST replayed with the same key answers the first
  response without running again (a different request under the same key is
  refused with `idempotency_error`), as Stripe does;
- `DELETE /_shim/state`: everything back to empty between tests, including
  webhook deliveries still waiting out localstripe's one-second delay;
- subscriptions of several items: `POST /v1/subscription_items` (with a
  price) adds one to a subscription and `DELETE /v1/subscription_items/<id>`
  takes it off, each prorated as Stripe does (a pending invoice item for the
  rest of the period, charged or credited) and announced with
  customer.subscription.updated; a plan change keeps the other items.

localstripe pickles its store to /tmp/localstripe.pickle after every write;
that is switched off, so parallel runs do not share (or clobber) state.

Run as `python -m tests.billing.localstripe_server <port>`; the tests use
`LocalStripe`, which starts it on a free port and talks to it over HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

API_KEY = "sk_test_herd_localstripe"
_ROOT = Path(__file__).resolve().parents[2]


# -- inside the localstripe process ---------------------------------------------------


def _install_shim(app: Any) -> None:
    from aiohttp import web
    from localstripe import resources, webhooks
    from localstripe.errors import UserError
    from localstripe.resources import (
        Customer,
        Event,
        Invoice,
        InvoiceItem,
        Plan,
        Subscription,
        SubscriptionItem,
        random_id,
        store,
    )
    from localstripe.server import get_post_data, json_response

    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    resources.Store.try_load_from_disk = lambda self: None  # type: ignore[method-assign]

    sessions: dict[str, dict[str, Any]] = {}
    replies: dict[str, tuple[str, bytes, int, bytes]] = {}

    def price_out(plan: Any) -> dict[str, Any]:
        return {
            "id": plan.id,
            "object": "price",
            "active": plan.active,
            "currency": plan.currency,
            "product": plan.product,
            "unit_amount": plan.amount,
            "recurring": {"interval": plan.interval, "interval_count": plan.interval_count},
            "type": "recurring",
            "metadata": plan.metadata,
            "created": plan.created,
            "livemode": False,
        }

    async def create_price(request: web.Request) -> web.Response:
        data = await get_post_data(request) or {}
        recurring = data.get("recurring") or {}
        if not isinstance(recurring, dict) or "interval" not in recurring:
            raise UserError(400, "shim: only recurring prices")
        plan = Plan(
            id="price_" + random_id(14),
            product=data.get("product"),
            amount=data.get("unit_amount"),
            currency=data.get("currency"),
            interval=recurring["interval"],
            interval_count=recurring.get("interval_count", 1),
            metadata=data.get("metadata"),
        )
        return json_response(price_out(plan))

    async def retrieve_price(request: web.Request) -> web.Response:
        return json_response(price_out(Plan._api_retrieve(request.match_info["id"])))

    def plans_for(items: Any) -> list[dict[str, Any]]:
        out = []
        for item in items or []:
            item = dict(item)
            if "price" in item:
                item["plan"] = item.pop("price")
            out.append(item)
        return out

    base_create = Subscription._api_create  # bound to Subscription
    base_update = Subscription._api_update

    def create_subscription(
        cls: type,
        items: Any = None,
        collection_method: str | None = None,
        days_until_due: Any = None,
        **data: Any,
    ) -> Any:
        if collection_method != "send_invoice":
            return base_create(items=plans_for(items), **data)
        # Bank transfer: Stripe finalises the first invoice and sends it;
        # nothing is charged, and the subscription is active meanwhile.
        charge = Invoice._api_pay_invoice
        Invoice._api_pay_invoice = classmethod(lambda c, id: c._api_retrieve(id))
        try:
            sub = base_create(items=plans_for(items), **data)
        finally:
            Invoice._api_pay_invoice = charge
        days = int(days_until_due or 30)
        sub.status, sub.collection_method, sub.days_until_due = "active", "send_invoice", days
        invoice = Invoice._api_retrieve(sub.latest_invoice)
        invoice.collection_method, invoice.attempt_count = "send_invoice", 0
        invoice.due_date = int(time.time()) + days * 86400
        return sub

    def update_subscription(cls: type, id: str, **data: Any) -> Any:
        data.pop("proration_behavior", None)
        if "items" in data:
            data["items"] = plans_for(data["items"])
        # localstripe rebuilds the list from the one item it handles; the
        # others (add-ons) stay on the subscription, as on Stripe.
        others = list(Subscription._api_retrieve(id).items._list[1:])
        sub = base_update(id, **data)
        sub.items._list.extend(i for i in others if i not in sub.items._list)
        return sub

    Subscription._api_create = classmethod(create_subscription)  # type: ignore[assignment]
    Subscription._api_update = classmethod(update_subscription)  # type: ignore[assignment]

    def prorate(sub: Any, item: Any, sign: int, description: str) -> None:
        start, end = sub.current_period_start, sub.current_period_end
        left = max(0, end - int(time.time())) / max(1, end - start)
        InvoiceItem(
            amount=sign * round(item.plan.amount * item.quantity * left),
            currency=item.plan.currency,
            proration=True,
            description=description,
            subscription=sub.id,
            plan=item.plan.id,
            customer=sub.customer,
        )

    base_item_delete = SubscriptionItem._api_delete

    def create_item(
        cls: type,
        subscription: str | None = None,
        price: str | None = None,
        plan: str | None = None,
        proration_behavior: str | None = None,
        **data: Any,
    ) -> Any:
        sub = Subscription._api_retrieve(subscription)
        if sub.status in ("canceled", "incomplete_expired"):
            raise UserError(400, "shim: the subscription has ended")
        item = SubscriptionItem(subscription=sub.id, plan=price or plan, **data)
        sub.items._list.append(item)
        if proration_behavior != "none":
            prorate(sub, item, 1, "Remaining time")
        webhooks.schedule_webhook(Event("customer.subscription.updated", sub))
        return item

    def delete_item(cls: type, id: str) -> Any:
        item = SubscriptionItem._api_retrieve(id)
        sub = Subscription._api_retrieve(item._subscription)
        sub.items._list.remove(item)
        prorate(sub, item, -1, "Unused time")
        webhooks.schedule_webhook(Event("customer.subscription.updated", sub))
        return base_item_delete(id)

    SubscriptionItem._api_create = classmethod(create_item)  # type: ignore[assignment]
    SubscriptionItem._api_delete = classmethod(delete_item)  # type: ignore[assignment]

    def session_out(session: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in session.items() if not k.startswith("_")}

    async def create_checkout_session(request: web.Request) -> web.Response:
        data = await get_post_data(request) or {}
        items = data.get("line_items") or []
        if data.get("mode") != "subscription" or len(items) != 1:
            raise UserError(400, "shim: one-item subscription Checkout only")
        Customer._api_retrieve(data.get("customer"))
        Plan._api_retrieve(items[0].get("price"))
        session_id = "cs_test_" + random_id(24)
        sessions[session_id] = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "status": "open",
            "payment_status": "unpaid",
            "customer": data["customer"],
            "client_reference_id": data.get("client_reference_id"),
            "metadata": data.get("metadata") or {},
            "subscription": None,
            "success_url": data.get("success_url"),
            "cancel_url": data.get("cancel_url"),
            "url": f"http://{request.host}/_shim/checkout/{session_id}",
            "created": int(time.time()),
            "livemode": False,
            "_price": items[0]["price"],
            "_subscription_metadata": (data.get("subscription_data") or {}).get("metadata"),
        }
        return json_response(session_out(sessions[session_id]))

    def checkout_session(request: web.Request) -> dict[str, Any]:
        session = sessions.get(request.match_info["id"])
        if session is None:
            raise UserError(404, "Not Found")
        return session

    async def retrieve_checkout_session(request: web.Request) -> web.Response:
        return json_response(session_out(checkout_session(request)))

    async def list_checkout_sessions(request: web.Request) -> web.Response:
        data = [session_out(s) for s in sessions.values()]
        return json_response({"object": "list", "data": data, "has_more": False})

    async def complete_checkout(request: web.Request) -> web.Response:
        """What the hosted page does once the customer gives a card: save it
        as the customer's default and start the subscription (localstripe
        charges its first invoice and sends the webhooks)."""
        session = checkout_session(request)
        if session["status"] != "open":
            raise UserError(400, "shim: session already completed")
        data = await get_post_data(request) or {}
        card = resources.PaymentMethod._api_attach(
            data.get("payment_method", "pm_card_visa"), customer=session["customer"]
        )
        customer = Customer._api_retrieve(session["customer"])
        customer.invoice_settings["default_payment_method"] = card.id
        sub = Subscription(
            customer=session["customer"],
            items=[{"plan": session["_price"]}],
            metadata=session["_subscription_metadata"],
        )
        paid = Invoice._api_retrieve(sub.latest_invoice).status == "paid"
        session.update(
            status="complete", subscription=sub.id, payment_status="paid" if paid else "unpaid"
        )
        return json_response(session_out(session))

    async def reset(request: web.Request) -> web.Response:
        store.clear()
        sessions.clear()
        replies.clear()
        webhooks._webhooks.clear()
        for task in asyncio.all_tasks():
            if task.get_coro().__name__ == "_send_webhook":  # type: ignore[union-attr]
                task.cancel()
        return web.Response()

    @web.middleware
    async def idempotency(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or not key:
            return await handler(request)
        body = await request.read()
        fingerprint = hashlib.sha256(request.path.encode() + b"\0" + body).hexdigest()
        if key in replies:
            path, was, status, answer = replies[key]
            if (path, was) != (request.path, fingerprint.encode()):
                error = {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the "
                    "same parameters they were first used with.",
                }
                return json_response({"error": error}, status=400)
            return web.Response(
                body=answer,
                status=status,
                content_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
        response = await handler(request)
        if isinstance(response, web.Response) and response.body is not None:
            assert isinstance(response.body, bytes)
            replies[key] = (request.path, fingerprint.encode(), response.status, response.body)
        return response

    app.middlewares.append(idempotency)
    router = app.router
    router.add_post("/v1/prices", create_price)
    router.add_get("/v1/prices/{id}", retrieve_price)
    router.add_post("/v1/checkout/sessions", create_checkout_session)
    router.add_get("/v1/checkout/sessions", list_checkout_sessions)
    router.add_get("/v1/checkout/sessions/{id}", retrieve_checkout_session)
    router.add_post("/_shim/checkout/{id}/complete", complete_checkout)
    router.add_delete("/_shim/state", reset)


def serve(port: int) -> None:
    from aiohttp import web
    from localstripe.server import app

    _install_shim(app)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


# -- in the tests ---------------------------------------------------------------------


class LocalStripe:
    """A running localstripe, seen from the tests."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.http = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
        )

    def reset(self) -> None:
        self.http.delete("/_shim/state").raise_for_status()

    def register_webhook(self, name: str, url: str, secret: str) -> None:
        response = self.http.post(f"/_config/webhooks/{name}", data={"url": url, "secret": secret})
        response.raise_for_status()

    def post(self, path: str, expect: int = 200, **data: Any) -> dict[str, Any]:
        response = self.http.post(path, data={k: str(v) for k, v in data.items()})
        assert response.status_code == expect, response.text
        return dict(response.json())

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def ids(self, path: str, **params: Any) -> list[str]:
        """Every id localstripe lists at `path` (plans include the shim's prices)."""
        return sorted(item["id"] for item in self.get(path, limit=100, **params)["data"])


@contextmanager
def localstripe_process() -> Iterator[LocalStripe]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.billing.localstripe_server", str(port)],
        cwd=_ROOT,
        start_new_session=True,
    )
    server = LocalStripe(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                server.reset()
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.05)
        yield server
    finally:
        server.http.close()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


if __name__ == "__main__":
    serve(int(sys.argv[1]))
