"""Billing against localstripe: the real `stripe` SDK over HTTP, and
localstripe's own signed webhooks delivered to Herd's API in a real uvicorn
process.

localstripe serves customers, payment methods, products, plans, one-item
subscriptions, invoices and signed webhooks; what it lacks (prices, Checkout,
send_invoice, idempotency keys) is bridged by the test-only shim in
tests/billing/localstripe_server.py. Events localstripe cannot produce
(checkout.session.completed) are posted signed as Stripe signs them.
Workers do not run: each test runs the workers' units of work itself and
checks the state and the jobs they leave.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from controlplane.audit.models import AuditEntry
from controlplane.billing import subscriptions, work
from controlplane.billing.models import (
    AddOn,
    BillingAccount,
    BillingSubscription,
    Plan,
    StripeEvent,
)
from controlplane.jobs.models import Job
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from tests.billing import stripe_events as se
from tests.billing.localstripe_server import LocalStripe
from tests.factories import World, build_world, plan

WAIT_SECONDS = 15.0


@pytest.fixture
def db_kind() -> str:
    # PostgreSQL only: the API process is shared by the module, so the
    # database must outlive a test; the billing code paths are the same on
    # SQLite, which tests/billing/test_webhook_journeys.py covers.
    return "postgresql"


# -- helpers -----------------------------------------------------------------------


def _sync(engine: Engine) -> None:
    from controlplane.billing import catalogue
    from controlplane.db import unit_of_work

    with unit_of_work(engine) as session:
        catalogue.sync(session)


def _order(base: str, world: World, domain: str, plan_code: str = "small") -> uuid.UUID:
    response = httpx.post(
        f"{base}/api/v1/organisations/{world.ids['org']}/servers",
        headers=world.headers("owner"),
        json={"domain": domain, "plan": plan_code, "title": "Paid"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    assert response.json()["state"] == "awaiting_payment"
    return uuid.UUID(response.json()["id"])


def _billing(base: str, world: World) -> dict[str, Any]:
    response = httpx.get(
        f"{base}/api/v1/organisations/{world.ids['org']}/billing",
        headers=world.headers("billing"),
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _wait_for_events(engine: Engine, wanted: dict[str, int]) -> list[StripeEvent]:
    """Wait until Herd has stored at least `wanted[type]` events of each type
    (localstripe delivers a second after the change)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        with Session(engine) as session:
            rows = list(session.exec(select(StripeEvent)).all())
        counts = {kind: sum(r.type == kind for r in rows) for kind in wanted}
        if all(counts[kind] >= n for kind, n in wanted.items()):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"webhooks stored: {sorted(r.type for r in rows)}")
        time.sleep(0.05)


def _process_stored(engine: Engine) -> int:
    """Run the worker's unit of work for each stored, unprocessed event."""
    with Session(engine) as session:
        pending = session.exec(
            select(StripeEvent.id)
            .where(col(StripeEvent.processed_at).is_(None))
            .order_by(col(StripeEvent.received_at))
        ).all()
    return sum(work.process_event(engine, event_id) for event_id in pending)


def _server_state(engine: Engine, server_id: uuid.UUID) -> ServerState:
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        return ServerState(server.state)


def _jobs(engine: Engine, server_id: uuid.UUID) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(Job).where(Job.server_id == server_id).order_by(col(Job.id)))
        return [job.kind for job in rows.all()]


def _audit(engine: Engine) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id))).all()
        return [action for action in rows if action.startswith("billing.")]


def _paid_order(base: str, engine: Engine, world: World, ls: LocalStripe) -> dict[str, Any]:
    """An order paid by card through (the shim's) Checkout, with localstripe's
    webhooks delivered and processed: the customer, subscription and server."""
    _sync(engine)
    server_id = _order(base, world, "paid.org-a-herd.social")
    work.subscribe(engine, server_id)
    [sub] = _billing(base, world)["subscriptions"]
    session_id = sub["checkout_url"].rpartition("/")[2]
    checkout = ls.post(f"/_shim/checkout/{session_id}/complete", payment_method="pm_card_visa")
    assert checkout["payment_status"] == "paid"
    _wait_for_events(engine, {"customer.subscription.created": 1, "invoice.payment_succeeded": 1})
    _process_stored(engine)
    return {"server_id": server_id, "checkout": checkout}


# -- the catalogue --------------------------------------------------------------------


def test_billing_sync_makes_products_and_prices_once(
    engine: Engine, stripe_on: LocalStripe
) -> None:
    from controlplane.cli.main import app

    with Session(engine) as session:
        plan(session, "small")
        session.add(AddOn(code="support", name="Support", price_cents=120000, interval="year"))
        session.commit()
    runner = CliRunner()
    first = runner.invoke(app, ["billing", "sync"])
    assert first.exit_code == 0, first.output
    assert "2 product(s) in sync, 2 new price(s)" in first.output
    products, prices = stripe_on.ids("/v1/products"), stripe_on.ids("/v1/plans")
    assert products == ["herd-addon-support", "herd-plan-small"]
    assert len(prices) == 2

    again = runner.invoke(app, ["billing", "sync"])
    assert again.exit_code == 0, again.output
    assert "0 new price(s)" in again.output
    assert stripe_on.ids("/v1/products") == products
    assert stripe_on.ids("/v1/plans") == prices

    with Session(engine) as session:
        small = session.exec(select(Plan).where(Plan.code == "small")).one()
        support = session.exec(select(AddOn)).one()
        old_price = small.stripe_price_id
        assert (small.stripe_product_id, support.stripe_product_id) == (
            "herd-plan-small",
            "herd-addon-support",
        )
        yearly = stripe_on.get(f"/v1/prices/{support.stripe_price_id}")
        assert (yearly["unit_amount"], yearly["recurring"]["interval"]) == (120000, "year")
        small.monthly_price_cents, small.name = 5900, "Small (2026)"
        session.add(small)
        session.commit()
    changed = runner.invoke(app, ["billing", "sync"])
    assert "1 new price(s)" in changed.output, changed.output
    assert stripe_on.ids("/v1/products") == products
    new_prices = stripe_on.ids("/v1/plans")
    assert len(new_prices) == 3
    assert set(prices) < set(new_prices)
    with Session(engine) as session:
        small = session.exec(select(Plan).where(Plan.code == "small")).one()
        assert small.stripe_price_id not in (None, old_price)
        assert stripe_on.get(f"/v1/prices/{small.stripe_price_id}")["unit_amount"] == 5900
    assert stripe_on.get("/v1/products/herd-plan-small")["name"] == "Small (2026)"


# -- orders ---------------------------------------------------------------------------


def test_an_order_makes_one_customer_and_one_checkout_however_often_retried(
    engine: Engine, stripe_on: LocalStripe, herd_api: str
) -> None:
    world = build_world(engine)
    _sync(engine)
    server_id = _order(herd_api, world, "first.org-a-herd.social")

    # A worker that made the Stripe objects and died before committing: the
    # task runs again and Stripe replays its first answers for Herd's keys.
    with Session(engine, expire_on_commit=False) as session:
        subscriptions.subscribe(session, server_id)
        account = session.get(BillingAccount, world.ids["org"])
        assert account is not None
        lost_customer = account.stripe_customer_id
        session.rollback()
    work.subscribe(engine, server_id)
    work.subscribe(engine, server_id)  # the broker delivered the task twice

    customers = stripe_on.ids("/v1/customers")
    assert customers == [lost_customer]
    [session_out] = stripe_on.get("/v1/checkout/sessions")["data"]
    billing = _billing(herd_api, world)
    assert billing["stripe_customer_id"] == lost_customer
    [sub] = billing["subscriptions"]
    assert sub["checkout_url"] == session_out["url"]
    assert session_out["client_reference_id"] == str(server_id)
    assert session_out["metadata"]["herd_server_id"] == str(server_id)
    customer = stripe_on.get(f"/v1/customers/{lost_customer}")
    assert customer["metadata"]["herd_organisation_id"] == str(world.ids["org"])

    # A second server of the same organisation: the same customer.
    second = _order(herd_api, world, "second.org-a-herd.social")
    work.subscribe(engine, second)
    assert stripe_on.ids("/v1/customers") == customers
    assert len(stripe_on.get("/v1/checkout/sessions")["data"]) == 2
    assert _server_state(engine, server_id) == ServerState.awaiting_payment
    assert _jobs(engine, server_id) == []


def test_card_payment_webhooks_from_localstripe_start_provisioning(
    engine: Engine, stripe_on: LocalStripe, herd_api: str
) -> None:
    world = build_world(engine)
    paid = _paid_order(herd_api, engine, world, stripe_on)
    server_id = paid["server_id"]
    assert _server_state(engine, server_id) == ServerState.provisioning
    assert _jobs(engine, server_id) == ["provision"]
    assert _audit(engine).count("billing.paid") == 1

    billing = _billing(herd_api, world)
    [sub] = billing["subscriptions"]
    assert sub["stripe_subscription_id"] == paid["checkout"]["subscription"]
    assert billing["status"] == "good"
    invoices = httpx.get(
        f"{herd_api}/api/v1/organisations/{world.ids['org']}/invoices",
        headers=world.headers("owner"),
        timeout=10,
    ).json()["items"]
    [invoice] = stripe_on.get("/v1/invoices", customer=billing["stripe_customer_id"])["data"]
    assert [(i["stripe_id"], i["status"]) for i in invoices] == [(invoice["id"], "paid")]
    assert invoices[0]["amount_paid"] == invoice["amount_paid"] == 4900

    # Checkout's own event (localstripe has no Checkout), signed as Stripe
    # signs it, and localstripe's deliveries again: nothing more happens.
    checkout = se.checkout_completed(
        paid["checkout"]["id"],
        billing["stripe_customer_id"],
        paid["checkout"]["subscription"],
        str(server_id),
    )
    payload, headers = se.signed(se.event("checkout.session.completed", checkout))
    response = httpx.post(f"{herd_api}{se.WEBHOOK_PATH}", content=payload, headers=headers)
    assert response.status_code == 200, response.text
    _process_stored(engine)
    assert _jobs(engine, server_id) == ["provision"]
    assert _audit(engine).count("billing.paid") == 1


def test_plan_change_moves_the_localstripe_subscription(
    engine: Engine, stripe_on: LocalStripe, herd_api: str
) -> None:
    world = build_world(engine)
    with Session(engine) as session:
        plan(session, "large")
        session.commit()
    paid = _paid_order(herd_api, engine, world, stripe_on)
    response = httpx.post(
        f"{herd_api}/api/v1/servers/{paid['server_id']}/plan",
        headers=world.headers("owner"),
        json={"plan": "large"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    with Session(engine) as session:
        large = session.exec(select(Plan).where(Plan.code == "large")).one()
        sub = session.exec(select(BillingSubscription)).one()
        assert sub.plan_id == large.id
    stripe_sub = stripe_on.get(f"/v1/subscriptions/{paid['checkout']['subscription']}")
    assert stripe_sub["plan"]["id"] == large.stripe_price_id
    # localstripe credits the unused time of the old plan, as Stripe prorates.
    items = stripe_on.get("/v1/invoiceitems", customer=stripe_sub["customer"])["data"]
    assert [i["proration"] for i in items] == [True]
    assert "billing.plan_change" in _audit(engine)


def test_declined_renewal_makes_the_organisation_past_due_until_paid(
    engine: Engine, stripe_on: LocalStripe, herd_api: str
) -> None:
    world = build_world(engine)
    paid = _paid_order(herd_api, engine, world, stripe_on)
    customer = paid["checkout"]["customer"]
    sub_id = paid["checkout"]["subscription"]

    # The card on file is replaced by one that authenticates, then declines
    # (Stripe's 4000 0082 6000 3178), and the next period's invoice is due.
    card = stripe_on.post(
        "/v1/payment_methods",
        type="card",
        **{
            "card[number]": "4000008260003178",
            "card[exp_month]": 12,
            "card[exp_year]": 2034,
            "card[cvc]": "123",
        },
    )
    stripe_on.post(f"/v1/payment_methods/{card['id']}/attach", customer=customer)
    stripe_on.post(
        f"/v1/customers/{customer}", **{"invoice_settings[default_payment_method]": card["id"]}
    )
    renewal = stripe_on.post("/v1/invoices", customer=customer, subscription=sub_id)
    attempt = stripe_on.post(f"/v1/invoices/{renewal['id']}/pay")
    intent = stripe_on.get(f"/v1/payment_intents/{attempt['payment_intent']}")
    stripe_on.post(
        f"/v1/payment_intents/{intent['id']}/_authenticate",
        expect=402,
        client_secret=intent["client_secret"],
        success="true",
    )
    _wait_for_events(engine, {"invoice.payment_failed": 1})
    _process_stored(engine)
    billing = _billing(herd_api, world)
    assert billing["status"] == "past_due"
    assert billing["suspend_after"] is not None
    assert _server_state(engine, paid["server_id"]) == ServerState.provisioning
    assert stripe_on.get(f"/v1/subscriptions/{sub_id}")["status"] == "past_due"

    # A working card, and the invoice is paid: the organisation is in good
    # standing again.
    good = stripe_on.post("/v1/payment_methods/pm_card_visa/attach", customer=customer)
    stripe_on.post(
        f"/v1/customers/{customer}", **{"invoice_settings[default_payment_method]": good["id"]}
    )
    assert stripe_on.post(f"/v1/invoices/{renewal['id']}/pay")["status"] == "paid"
    _wait_for_events(engine, {"invoice.payment_succeeded": 2})
    _process_stored(engine)
    assert _billing(herd_api, world)["status"] == "good"
    assert _audit(engine) == [
        "billing.subscribe",
        "billing.paid",
        "billing.past_due",
        "billing.paid_up",
    ]


def test_bank_transfer_order_waits_for_its_invoice(
    engine: Engine, stripe_on: LocalStripe, herd_api: str
) -> None:
    world = build_world(engine)
    _sync(engine)
    response = httpx.patch(
        f"{herd_api}/api/v1/organisations/{world.ids['org']}/billing",
        headers=world.headers("staff_admin"),
        json={"collection_method": "send_invoice", "days_until_due": 45},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    server_id = _order(herd_api, world, "city.org-a-herd.social")
    work.subscribe(engine, server_id)
    work.subscribe(engine, server_id)
    [stripe_sub] = stripe_on.get("/v1/subscriptions", status="all")["data"]
    assert stripe_sub["collection_method"] == "send_invoice"
    assert stripe_sub["metadata"]["herd_server_id"] == str(server_id)
    [sub] = _billing(herd_api, world)["subscriptions"]
    assert sub["stripe_subscription_id"] == stripe_sub["id"]
    assert sub["checkout_url"] is None
    _wait_for_events(engine, {"customer.subscription.created": 1, "invoice.created": 1})
    _process_stored(engine)
    assert _server_state(engine, server_id) == ServerState.awaiting_payment

    # The transfer arrives; localstripe can only mark an invoice paid by
    # charging, so a card stands in for the bank.
    customer = stripe_sub["customer"]
    good = stripe_on.post("/v1/payment_methods/pm_card_visa/attach", customer=customer)
    stripe_on.post(
        f"/v1/customers/{customer}", **{"invoice_settings[default_payment_method]": good["id"]}
    )
    stripe_on.post(f"/v1/invoices/{stripe_sub['latest_invoice']}/pay")
    _wait_for_events(engine, {"invoice.payment_succeeded": 1})
    _process_stored(engine)
    assert _server_state(engine, server_id) == ServerState.provisioning
    assert _jobs(engine, server_id) == ["provision"]
