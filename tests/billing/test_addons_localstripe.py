"""Add-ons against localstripe through the real `stripe` SDK: moderation
staffing as a second item on the server's subscription (the shim in
localstripe_server.py gives localstripe several items per subscription), kept
through a plan change and taken off again; a support contract on its own
yearly subscription, paid by bank transfer."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.billing import addons, work
from controlplane.billing.models import AddOn, AddOnOrder, Plan
from tests.billing.localstripe_server import LocalStripe
from tests.billing.test_with_localstripe import (
    _billing,
    _paid_order,
    _process_stored,
    _sync,
    _wait_for_events,
)
from tests.factories import build_world, plan


@pytest.fixture
def db_kind() -> str:
    # PostgreSQL only, as in test_with_localstripe.py: the API process is
    # shared by the module.
    return "postgresql"


def _catalogue(engine: Engine) -> None:
    with Session(engine) as session:
        plan(session, "large")
        session.add(AddOn(code="moderation", name="Moderation staffing", price_cents=19900))
        session.add(
            AddOn(
                code="support",
                name="Support contract",
                price_cents=240000,
                interval="year",
                per="organisation",
            )
        )
        session.commit()


def _order(engine: Engine, order_id: str) -> AddOnOrder:
    with Session(engine) as session:
        row = session.get(AddOnOrder, uuid.UUID(order_id))
        assert row is not None
        return row


def _items(ls: LocalStripe, sub_id: str) -> list[dict[str, Any]]:
    return list(ls.get(f"/v1/subscriptions/{sub_id}")["items"]["data"])


def test_moderation_is_an_item_on_the_server_subscription_in_stripe(
    engine: Engine, stripe_on: LocalStripe, herd_api: str
) -> None:
    world = build_world(engine)
    _catalogue(engine)
    paid = _paid_order(herd_api, engine, world, stripe_on)
    server_id, sub_id = paid["server_id"], paid["checkout"]["subscription"]
    customer = paid["checkout"]["customer"]
    url = f"{herd_api}/api/v1/servers/{server_id}/addons/moderation"
    response = httpx.post(url, headers=world.headers("owner"), timeout=10)
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]
    work.apply_addon(engine, uuid.UUID(order_id))

    with Session(engine) as session:
        moderation = session.exec(select(AddOn).where(AddOn.code == "moderation")).one()
        small = session.exec(select(Plan).where(Plan.code == "small")).one()
        assert addons.moderation_active(session, server_id)
    items = _items(stripe_on, sub_id)
    assert [i["plan"]["id"] for i in items] == [small.stripe_price_id, moderation.stripe_price_id]
    assert items[1]["metadata"]["herd_addon_order_id"] == order_id
    assert items[1]["id"] == _order(engine, order_id).stripe_item_id
    pending = stripe_on.get("/v1/invoiceitems", customer=customer)["data"]
    assert [(i["proration"], i["amount"] > 0) for i in pending] == [(True, True)]
    # Stripe's own word on the change, delivered and processed: still active.
    _wait_for_events(engine, {"customer.subscription.updated": 1})
    _process_stored(engine)
    assert _order(engine, order_id).status == "active"

    # A plan change moves the plan's item and leaves the add-on's alone.
    change = httpx.post(
        f"{herd_api}/api/v1/servers/{server_id}/plan",
        headers=world.headers("owner"),
        json={"plan": "large"},
        timeout=10,
    )
    assert change.status_code == 200, change.text
    with Session(engine) as session:
        large = session.exec(select(Plan).where(Plan.code == "large")).one()
    assert [i["plan"]["id"] for i in _items(stripe_on, sub_id)] == [
        large.stripe_price_id,
        moderation.stripe_price_id,
    ]

    cancelled = httpx.delete(url, headers=world.headers("billing"), timeout=10)
    assert cancelled.status_code == 202, cancelled.text
    work.apply_addon(engine, uuid.UUID(order_id))
    work.apply_addon(engine, uuid.UUID(order_id))  # a retried task: nothing more
    assert [i["plan"]["id"] for i in _items(stripe_on, sub_id)] == [large.stripe_price_id]
    credits = [
        i["amount"]
        for i in stripe_on.get("/v1/invoiceitems", customer=customer)["data"]
        if i["description"] == "Unused time" and i["plan"]["id"] == moderation.stripe_price_id
    ]
    assert len(credits) == 1
    assert credits[0] < 0
    _wait_for_events(engine, {"customer.subscription.updated": 2})
    _process_stored(engine)
    assert _order(engine, order_id).status == "ended"
    with Session(engine) as session:
        assert not addons.moderation_active(session, server_id)


def test_support_contract_is_its_own_yearly_subscription_in_stripe(
    engine: Engine, stripe_on: LocalStripe, herd_api: str
) -> None:
    world = build_world(engine)
    _catalogue(engine)
    _sync(engine)
    response = httpx.patch(
        f"{herd_api}/api/v1/organisations/{world.ids['org']}/billing",
        headers=world.headers("staff_admin"),
        json={"collection_method": "send_invoice", "days_until_due": 30},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    url = f"{herd_api}/api/v1/organisations/{world.ids['org']}/addons/support"
    order_id = httpx.post(url, headers=world.headers("billing"), timeout=10).json()["id"]
    work.apply_addon(engine, uuid.UUID(order_id))
    contract = _order(engine, order_id).stripe_subscription_id
    assert contract is not None
    stripe_sub = stripe_on.get(f"/v1/subscriptions/{contract}")
    assert stripe_sub["plan"]["interval"] == "year"
    assert stripe_sub["collection_method"] == "send_invoice"
    assert stripe_sub["metadata"]["herd_addon_order_id"] == order_id
    _wait_for_events(engine, {"customer.subscription.created": 1, "invoice.created": 1})
    _process_stored(engine)
    assert _order(engine, order_id).status == "pending"

    # The transfer arrives (a card stands in for the bank, as localstripe
    # marks an invoice paid only by charging it).
    customer = stripe_sub["customer"]
    card = stripe_on.post("/v1/payment_methods/pm_card_visa/attach", customer=customer)
    stripe_on.post(
        f"/v1/customers/{customer}", **{"invoice_settings[default_payment_method]": card["id"]}
    )
    stripe_on.post(f"/v1/invoices/{stripe_sub['latest_invoice']}/pay")
    _wait_for_events(engine, {"invoice.payment_succeeded": 1})
    _process_stored(engine)
    assert _order(engine, order_id).status == "active"
    with Session(engine) as session:
        assert addons.support_contract_active(session, world.ids["org"])
    assert _billing(herd_api, world)["status"] == "good"

    # Cancelled: it runs to the end of its year, then Stripe ends it.
    assert httpx.delete(url, headers=world.headers("owner"), timeout=10).status_code == 202
    work.apply_addon(engine, uuid.UUID(order_id))
    assert stripe_on.get(f"/v1/subscriptions/{contract}")["cancel_at_period_end"] is True
    with Session(engine) as session:
        assert addons.support_contract_active(session, world.ids["org"])
    stripe_on.http.delete(f"/v1/subscriptions/{contract}").raise_for_status()
    _wait_for_events(engine, {"customer.subscription.deleted": 1})
    _process_stored(engine)
    assert _order(engine, order_id).status == "ended"
    with Session(engine) as session:
        assert not addons.support_contract_active(session, world.ids["org"])
