"""Add-ons through the API and the workers' units of work, Stripe faked at
the gateway: moderation staffing as a second item on the server's monthly
subscription, a support contract on its own yearly subscription, each
ordered, made active by what Stripe says, cancelled, and ended."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.audit.models import AuditEntry
from controlplane.billing import addons, work
from controlplane.billing.models import AddOn, AddOnOrder, BillingAccount, BillingSubscription
from controlplane.sqltypes import utcnow
from tests.billing import stripe_events as se
from tests.billing.stripe_events import FakeGateway
from tests.factories import World, build_world

CUSTOMER, SERVER_SUB = "cus_org_a", "sub_server_a"


def _post(client: TestClient, body: dict[str, Any]) -> None:
    payload, headers = se.signed(body)
    assert client.post(se.WEBHOOK_PATH, content=payload, headers=headers).status_code == 200


def _run(engine: Engine, sent: list[tuple[str, str]]) -> None:
    """What the workers would do with the tasks sent."""
    while sent:
        task, argument = sent.pop(0)
        if task == work.PROCESS_EVENT_TASK:
            work.process_event(engine, argument)
        elif task == work.ADDON_TASK:
            work.apply_addon(engine, uuid.UUID(argument))
        elif task == work.SUBSCRIBE_TASK:
            work.subscribe(engine, uuid.UUID(argument))


def _world(engine: Engine, collection_method: str = "charge_automatically") -> World:
    """The world's active server paid for by a live monthly subscription, and
    both add-ons in the catalogue and in (fake) Stripe."""
    from controlplane.billing import catalogue

    world = build_world(engine)
    with Session(engine) as session:
        session.add(
            BillingAccount(
                organisation_id=world.ids["org"],
                stripe_customer_id=CUSTOMER,
                collection_method=collection_method,
            )
        )
        session.add(
            BillingSubscription(
                server_id=world.ids["server"],
                organisation_id=world.ids["org"],
                plan_id=world.ids["plan"],
                stripe_subscription_id=SERVER_SUB,
                status="active",
                paid_at=utcnow(),
            )
        )
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
        catalogue.sync(session)
        session.commit()
    return world


def _order(engine: Engine) -> AddOnOrder:
    with Session(engine) as session:
        return session.exec(select(AddOnOrder).order_by(col(AddOnOrder.id).desc())).first()  # type: ignore[return-value]


def _audit(engine: Engine) -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(AuditEntry.action).order_by(col(AuditEntry.id))).all()
        return [a for a in rows if a.startswith("billing.addon")]


def _moderation(engine: Engine, world: World) -> bool:
    with Session(engine) as session:
        return addons.moderation_active(session, world.ids["server"])


def _support(engine: Engine, world: World) -> bool:
    with Session(engine) as session:
        return addons.support_contract_active(session, world.ids["org"])


def test_moderation_staffing_is_a_second_item_on_the_server_subscription(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    world = _world(engine)
    url = f"/api/v1/servers/{world.ids['server']}/addons/moderation"
    assert client.post(url, headers=world.headers("viewer")).status_code == 403
    assert client.post(url, headers=world.headers("outsider")).status_code == 404
    response = client.post(url, headers=world.headers("billing"))
    assert response.status_code == 202, response.text
    assert (response.json()["addon"], response.json()["status"]) == ("moderation", "pending")
    again = client.post(url, headers=world.headers("owner"))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert not _moderation(engine, world)

    order_id = response.json()["id"]
    # A worker that made the item and died before committing: the task runs
    # again, with the same key, and Stripe replays its first answer.
    with Session(engine) as session:
        addons.apply(session, uuid.UUID(order_id))
        session.rollback()
    sent.append(sent[0])  # and the broker hands the task out twice
    _run(engine, sent)
    items = [(what, key) for what, key in billing_on.calls if what == "item"]
    assert items == [("item", f"herd-addon-item-{order_id}")] * 2
    assert len({billing_on.by_key[key].id for _, key in items}) == 1
    listed = client.get(
        f"/api/v1/servers/{world.ids['server']}/addons", headers=world.headers("viewer")
    )
    assert listed.status_code == 403  # add-ons are billing's to read
    [shown] = client.get(
        f"/api/v1/servers/{world.ids['server']}/addons", headers=world.headers("admin")
    ).json()["items"]
    assert (shown["status"], shown["stripe_subscription_id"]) == ("active", SERVER_SUB)
    assert _moderation(engine, world)
    assert _order(engine).stripe_item_id == billing_on.by_key[f"herd-addon-item-{order_id}"].id

    cancelled = client.delete(url, headers=world.headers("owner"))
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelling"
    _run(engine, sent)
    assert ("item_delete", f"herd-addon-item-delete-{order_id}") in billing_on.calls
    assert _order(engine).status == "ended"
    assert not _moderation(engine, world)
    assert client.delete(url, headers=world.headers("owner")).status_code == 404
    assert _audit(engine) == [
        "billing.addon_order",
        "billing.addon_active",
        "billing.addon_cancel",
        "billing.addon_ended",
    ]
    # Ended, it can be ordered again: a new order, a new item.
    assert client.post(url, headers=world.headers("owner")).status_code == 202
    _run(engine, sent)
    assert _moderation(engine, world)
    organisation = client.get(
        f"/api/v1/organisations/{world.ids['org']}/addons", headers=world.headers("billing")
    ).json()["items"]
    assert [o["status"] for o in organisation] == ["ended", "active"]


def test_moderation_ends_when_stripe_no_longer_lists_its_item(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    world = _world(engine)
    client.post(
        f"/api/v1/servers/{world.ids['server']}/addons/moderation", headers=world.headers("owner")
    )
    _run(engine, sent)
    order = _order(engine)
    assert order.stripe_item_created is not None
    plan_only = se.subscription(SERVER_SUB, CUSTOMER, "active", str(world.ids["server"]))
    plan_only["items"] = {"object": "list", "data": [{"id": "si_plan", "metadata": {}}]}
    # A snapshot from before the item was added says nothing about it.
    _post(
        client, se.event("customer.subscription.updated", plan_only, order.stripe_item_created - 5)
    )
    _run(engine, sent)
    assert _moderation(engine, world)
    # A newer one without it: removed in Stripe's dashboard.
    _post(
        client, se.event("customer.subscription.updated", plan_only, order.stripe_item_created + 5)
    )
    _run(engine, sent)
    assert not _moderation(engine, world)
    assert _order(engine).status == "ended"


def test_moderation_ends_with_the_server_subscription(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    world = _world(engine)
    client.post(
        f"/api/v1/servers/{world.ids['server']}/addons/moderation", headers=world.headers("owner")
    )
    _run(engine, sent)
    assert _moderation(engine, world)
    deleted = se.subscription(SERVER_SUB, CUSTOMER, "canceled", str(world.ids["server"]))
    _post(client, se.event("customer.subscription.deleted", deleted))
    _run(engine, sent)
    assert not _moderation(engine, world)
    assert "billing.addon_ended" in _audit(engine)


def test_what_cannot_be_ordered(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    world = _world(engine)
    headers = world.headers("owner")
    # The support contract is the organisation's, moderation a server's.
    assert (
        client.post(
            f"/api/v1/servers/{world.ids['server']}/addons/support", headers=headers
        ).status_code
        == 404
    )
    assert (
        client.post(
            f"/api/v1/organisations/{world.ids['org']}/addons/moderation", headers=headers
        ).status_code
        == 404
    )
    # A suspended server of the world has no subscription to add an item to.
    refused = client.post(
        f"/api/v1/servers/{world.ids['suspended_server']}/addons/moderation", headers=headers
    )
    assert refused.status_code == 409
    assert "no live subscription" in refused.json()["detail"]
    assert sent == []
    assert _audit(engine) == []


def test_support_contract_by_bank_transfer_is_active_once_its_invoice_is_paid(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    world = _world(engine, "send_invoice")
    url = f"/api/v1/organisations/{world.ids['org']}/addons/support"
    assert client.post(url, headers=world.headers("admin")).status_code == 403
    response = client.post(url, headers=world.headers("billing"))
    assert response.status_code == 202, response.text
    order_id = response.json()["id"]
    with Session(engine) as session:  # a worker that died before committing
        addons.apply(session, uuid.UUID(order_id))
        session.rollback()
    _run(engine, sent)
    _run(engine, [(work.ADDON_TASK, order_id)])  # done already: no second write
    subs = [key for what, key in billing_on.calls if what == "subscription"]
    assert subs == [f"herd-addon-subscription-{order_id}"] * 2
    assert ("customer", f"herd-customer-{world.ids['org']}") not in billing_on.calls
    contract = billing_on.by_key[subs[0]].id
    assert contract != SERVER_SUB

    meta = {"herd_addon_order_id": order_id}
    created = se.subscription(contract, CUSTOMER, "active", "")
    created["metadata"] = meta
    open_invoice = se.invoice("in_support", CUSTOMER, contract, "open")
    open_invoice["parent"]["subscription_details"]["metadata"] = meta
    paid_invoice = se.invoice("in_support", CUSTOMER, contract, "paid", amount=240000)
    paid_invoice["parent"]["subscription_details"]["metadata"] = meta
    # Stripe's order of delivery is not the order of events.
    _post(client, se.event("invoice.paid", paid_invoice))
    _post(client, se.event("invoice.finalized", open_invoice))
    _post(client, se.event("customer.subscription.created", created))
    _run(engine, sent)
    assert _support(engine, world)
    assert _order(engine).stripe_subscription_id == contract
    invoices = client.get(
        f"/api/v1/organisations/{world.ids['org']}/invoices", headers=world.headers("billing")
    ).json()["items"]
    assert [(i["stripe_id"], i["status"]) for i in invoices] == [("in_support", "paid")]

    # Cancelled, a paid contract runs to the end of its year.
    cancelled = client.delete(url, headers=world.headers("owner"))
    assert cancelled.status_code == 202
    _run(engine, sent)
    assert ("cancel_at_period_end", f"herd-addon-cancel-{order_id}") in billing_on.calls
    assert _support(engine, world)
    ended = se.subscription(contract, CUSTOMER, "canceled", "")
    ended["metadata"] = meta
    _post(client, se.event("customer.subscription.deleted", ended))
    # A stale snapshot arriving later cannot revive it.
    _post(
        client, se.event("customer.subscription.updated", created, int(utcnow().timestamp()) + 60)
    )
    _run(engine, sent)
    assert not _support(engine, world)
    assert _order(engine).status == "ended"
    assert _audit(engine) == [
        "billing.addon_order",
        "billing.addon_active",
        "billing.addon_cancel",
        "billing.addon_ended",
    ]


def test_support_contract_by_card_goes_through_checkout(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    world = _world(engine)
    url = f"/api/v1/organisations/{world.ids['org']}/addons/support"
    order_id = client.post(url, headers=world.headers("owner")).json()["id"]
    _run(engine, sent)
    [shown] = client.get(
        f"/api/v1/organisations/{world.ids['org']}/addons", headers=world.headers("owner")
    ).json()["items"]
    assert shown["checkout_url"].endswith(order_id)
    assert shown["status"] == "pending"
    completed = se.checkout_completed("cs_support", CUSTOMER, "sub_support", order_id)
    completed["metadata"] = {"herd_addon_order_id": order_id}
    _post(client, se.event("checkout.session.completed", completed))
    _run(engine, sent)
    assert _support(engine, world)
    assert _order(engine).stripe_subscription_id == "sub_support"
    # The server's subscription and provisioning are untouched by it.
    with Session(engine) as session:
        sub = session.exec(select(BillingSubscription)).one()
        assert sub.stripe_subscription_id == SERVER_SUB


def test_an_unpaid_contract_cancelled_ends_at_once(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    world = _world(engine, "send_invoice")
    url = f"/api/v1/organisations/{world.ids['org']}/addons/support"
    order_id = client.post(url, headers=world.headers("owner")).json()["id"]
    _run(engine, sent)
    assert client.delete(url, headers=world.headers("owner")).status_code == 202
    _run(engine, sent)
    assert ("cancel", f"herd-addon-cancel-{order_id}") in billing_on.calls
    assert _order(engine).status == "ended"
    assert not _support(engine, world)


def test_staff_set_the_add_ons_herd_sells_from_the_cli(engine: Engine) -> None:
    from typer.testing import CliRunner

    from controlplane.cli.main import app

    runner = CliRunner()
    made = runner.invoke(
        app, ["billing", "addon", "support", "--name", "Support", "--price-cents", "120000"]
    )
    assert made.exit_code == 0, made.output
    assert "support: Support, 120000 eur/year" in made.output
    changed = runner.invoke(
        app, ["billing", "addon", "support", "--name", "Support plus", "--price-cents", "150000"]
    )
    assert changed.exit_code == 0, changed.output
    refused = runner.invoke(
        app, ["billing", "addon", "hugs", "--name", "Hugs", "--price-cents", "1"]
    )
    assert refused.exit_code == 2
    assert "not an add-on Herd sells" in refused.output
    with Session(engine) as session:
        [support] = session.exec(select(AddOn)).all()
    assert (support.code, support.name, support.price_cents) == ("support", "Support plus", 150000)
    assert (support.interval, support.per) == ("year", "organisation")
