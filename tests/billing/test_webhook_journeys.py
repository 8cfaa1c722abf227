"""Billing end to end through the API and the workers' units of work, with
Stripe faked at the gateway and the host faked at run_on_host: webhook
verification, storage once by id, order → paid → provisioning, dunning
(past due → suspended after grace → resumed), cancellation (final backup →
deprovisioned after retention), and 1,000 shuffled deliveries."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.audit.models import AuditEntry
from controlplane.billing import work
from controlplane.billing.models import (
    BillingAccount,
    BillingSubscription,
    Invoice,
    Plan,
    StripeEvent,
)
from controlplane.jobs.models import FINISHED, Job, JobState
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from provisioning import pipeline
from provisioning.ansible import PlaybookResult
from provisioning.registry import pipelines, redactor_for
from provisioning.steps import runs
from tests.billing import stripe_events as se
from tests.billing.stripe_events import FakeGateway
from tests.factories import World, build_world, fingerprint, host, member, organisation, plan
from tests.mailbox import Mailbox


def _post(client: TestClient, body: dict[str, Any], **kwargs: Any) -> Any:
    payload, headers = se.signed(body, **kwargs)
    return client.post(se.WEBHOOK_PATH, content=payload, headers=headers)


def _process(engine: Engine, sent: list[tuple[str, str]], now: Any = None) -> int:
    done = 0
    while sent:
        task, argument = sent.pop(0)
        if task == work.PROCESS_EVENT_TASK:
            done += work.process_event(engine, argument, now)
        elif task == work.SUBSCRIBE_TASK:
            work.subscribe(engine, uuid.UUID(argument))
    return done


def _server(engine: Engine, server_id: uuid.UUID) -> Server:
    with Session(engine) as session:
        row = session.get(Server, server_id)
        assert row is not None
        return row


def _jobs(engine: Engine, server_id: uuid.UUID) -> list[Job]:
    with Session(engine) as session:
        return list(
            session.exec(select(Job).where(Job.server_id == server_id).order_by(col(Job.id))).all()
        )


def _audit(engine: Engine, prefix: str = "billing.") -> list[str]:
    with Session(engine) as session:
        rows = session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all()
        return [r.action for r in rows if r.action.startswith(prefix)]


def _paying_server(
    engine: Engine, state: ServerState = ServerState.active, placed: bool = True
) -> tuple[uuid.UUID, str, str]:
    """An organisation with a Stripe customer and a server with a live
    subscription: (server id, customer id, subscription id)."""
    with Session(engine) as session:
        org = organisation(session)
        member(session, org, "owner", f"owner@{org.slug}.example-herd.org")
        small = session.exec(select(Plan).limit(1)).first() or plan(session)
        the_host = host(session) if placed else None
        row = Server(
            organisation_id=org.id,
            plan_id=small.id,
            host_id=the_host.id if the_host else None,
            slot=0 if the_host else None,
            domain=f"{org.slug}.herd-test.social",
            title="Paying",
            state=state,
        )
        session.add(row)
        session.flush()
        customer, sub_id = f"cus_{org.slug}", f"sub_{org.slug}"
        session.add(BillingAccount(organisation_id=org.id, stripe_customer_id=customer))
        session.add(
            BillingSubscription(
                server_id=row.id,
                organisation_id=org.id,
                plan_id=small.id,
                stripe_subscription_id=sub_id,
                status="active",
                paid_at=utcnow(),
            )
        )
        session.commit()
        return row.id, customer, sub_id


def _ended_at(engine: Engine, server_id: uuid.UUID) -> Any:
    with Session(engine) as session:
        sub = session.exec(
            select(BillingSubscription).where(BillingSubscription.server_id == server_id)
        ).one()
        assert sub.ended_at is not None
        return sub.ended_at


def _drive(engine: Engine, job_id: uuid.UUID) -> Job:
    for _ in range(30):
        pipeline.run_job(engine, job_id, pipelines(), 30, redactor_for, owner="worker-a")
        with Session(engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            if job.state in FINISHED:
                return job
            session.execute(update(Job).where(col(Job.id) == job_id).values(not_before=utcnow()))
            session.commit()
    raise AssertionError("the job did not finish")


@pytest.fixture
def playbooks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    ran: list[tuple[str, dict[str, Any]]] = []

    def fake_run(playbook: str, _inv: Any, variables: dict[str, Any], *_a: Any, **_k: Any):
        ran.append((playbook, variables))
        return PlaybookResult(status="successful", rc=0)

    monkeypatch.setattr(runs, "run_playbook", fake_run)
    return ran


# -- the endpoint ------------------------------------------------------------------


def test_missing_forged_and_stale_signatures_change_nothing(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    build_world(engine)
    before = fingerprint(engine)
    body = se.event("invoice.paid", se.invoice("in_1", "cus_x", "sub_x", "paid"))
    payload, headers = se.signed(body)
    attempts = [
        client.post(se.WEBHOOK_PATH, content=payload, headers={"Content-Type": "application/json"}),
        _post(client, body, secret="whsec_someone_else_entirely_000"),
        # Signed for another body: the signature must cover this body.
        client.post(se.WEBHOOK_PATH, content=payload.replace(b"in_1", b"in_2"), headers=headers),
        _post(client, body, at=int(utcnow().timestamp()) - 3600),
        client.post(se.WEBHOOK_PATH, content=payload, headers={"Stripe-Signature": "t=abc,v1=zz"}),
    ]
    for response in attempts:
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:herd:problem:bad-signature"
    assert fingerprint(engine) == before
    assert sent == []


def test_each_event_is_stored_once_and_processed_once(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    body = se.event("invoice.paid", se.invoice("in_1", "cus_x", "sub_x", "paid"))
    first, again = _post(client, body), _post(client, body)
    assert first.status_code == again.status_code == 200
    assert (first.json()["duplicate"], again.json()["duplicate"]) == (False, True)
    assert len(sent) == 1
    sent.append(sent[0])  # a task delivered twice by the broker
    assert _process(engine, sent) == 1
    with Session(engine) as session:
        assert len(session.exec(select(StripeEvent)).all()) == 1


def test_a_signed_body_that_is_not_an_event_is_refused(
    client: TestClient, engine: Engine, billing_on: FakeGateway
) -> None:
    response = _post(client, {"hello": "world"})
    assert response.status_code == 400
    assert response.json()["type"] == "urn:herd:problem:bad-event"


# -- journeys -----------------------------------------------------------------------


def test_order_waits_for_payment_then_provisions(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    world: World = build_world(engine)
    from controlplane.billing import catalogue
    from controlplane.db import unit_of_work

    with unit_of_work(engine) as session:
        catalogue.sync(session)
    with unit_of_work(engine) as session:
        again = catalogue.sync(session)
    assert again.new_prices == [], "a second sync makes no new prices"

    response = client.post(
        f"/api/v1/organisations/{world.ids['org']}/servers",
        headers=world.headers("owner"),
        json={"domain": "paid.org-a-herd.social", "plan": "small", "title": "Paid"},
    )
    assert response.status_code == 201, response.text
    server_id = uuid.UUID(response.json()["id"])
    assert response.json()["state"] == "awaiting_payment"
    _process(engine, sent)
    _process(engine, [(work.SUBSCRIBE_TASK, str(server_id))])  # a retried task
    keys = [key for what, key in billing_on.calls if what in {"customer", "checkout"}]
    assert keys == [f"herd-customer-{world.ids['org']}", f"herd-checkout-{server_id}"]

    billing = client.get(
        f"/api/v1/organisations/{world.ids['org']}/billing", headers=world.headers("billing")
    ).json()
    [sub] = billing["subscriptions"]
    assert sub["checkout_url"].endswith(str(server_id))
    customer = billing["stripe_customer_id"]

    # An unpaid invoice or a subscription update does not start anything.
    _post(
        client,
        se.event(
            "customer.subscription.created",
            se.subscription("sub_paid", customer, "incomplete", str(server_id)),
        ),
    )
    _post(
        client,
        se.event(
            "invoice.finalized",
            se.invoice("in_paid", customer, "sub_paid", "open", server_id=str(server_id)),
        ),
    )
    _process(engine, sent)
    assert _server(engine, server_id).state == ServerState.awaiting_payment
    assert _jobs(engine, server_id) == []

    _post(
        client,
        se.event(
            "invoice.paid",
            se.invoice("in_paid", customer, "sub_paid", "paid", server_id=str(server_id)),
        ),
    )
    _post(
        client,
        se.event(
            "checkout.session.completed",
            se.checkout_completed("cs_1", customer, "sub_paid", str(server_id)),
        ),
    )
    _process(engine, sent)
    assert _server(engine, server_id).state == ServerState.provisioning
    assert [j.kind for j in _jobs(engine, server_id)] == ["provision"]
    assert "billing.paid" in _audit(engine)

    invoices = client.get(
        f"/api/v1/organisations/{world.ids['org']}/invoices", headers=world.headers("owner")
    ).json()["items"]
    assert [(i["stripe_id"], i["status"]) for i in invoices] == [("in_paid", "paid")]
    assert invoices[0]["hosted_invoice_url"].startswith("https://invoice.stripe.com/")
    one = client.get(
        f"/api/v1/organisations/{world.ids['org']}/invoices/in_paid",
        headers=world.headers("billing"),
    )
    assert one.status_code == 200
    outsider = client.get(
        f"/api/v1/organisations/{world.ids['org']}/invoices/in_paid",
        headers=world.headers("outsider"),
    )
    assert outsider.status_code == 404


def test_bank_transfer_organisations_get_send_invoice(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    world = build_world(engine)
    org = world.ids["org"]
    response = client.patch(
        f"/api/v1/organisations/{org}/billing",
        headers=world.headers("staff_admin"),
        json={"collection_method": "send_invoice", "days_until_due": 45},
    )
    assert response.status_code == 200, response.text
    assert response.json()["days_until_due"] == 45
    bad = client.patch(
        f"/api/v1/organisations/{org}/billing",
        headers=world.headers("staff_admin"),
        json={"collection_method": "cheque"},
    )
    assert bad.status_code == 422
    assert bad.headers["content-type"] == "application/problem+json"
    from controlplane.billing import catalogue
    from controlplane.db import unit_of_work

    with unit_of_work(engine) as session:
        catalogue.sync(session)
    created = client.post(
        f"/api/v1/organisations/{org}/servers",
        headers=world.headers("owner"),
        json={"domain": "city.org-a-herd.social", "plan": "small", "title": "City"},
    ).json()
    _process(engine, sent)
    assert [w for w, _ in billing_on.calls if w == "subscription"] == ["subscription"]
    assert ("subscription", f"herd-subscription-{created['id']}") in billing_on.calls


def test_failed_payment_past_due_suspended_after_grace_then_resumed(
    client: TestClient,
    engine: Engine,
    billing_on: FakeGateway,
    sent: list,
    mailbox: Mailbox,
    playbooks: list,
) -> None:
    server_id, customer, sub_id = _paying_server(engine)
    start = utcnow()
    _post(
        client,
        se.event(
            "invoice.payment_failed", se.invoice("in_2", customer, sub_id, "open", attempt_count=1)
        ),
    )
    _process(engine, sent, now=start)
    with Session(engine) as session:
        account = session.exec(select(BillingAccount)).one()
        assert account.status == "past_due"
    [mail] = mailbox.wait_for(1)
    assert "Payment failed" in str(mail["Subject"])
    assert _server(engine, server_id).state == ServerState.active

    work.tick(engine, now=start + timedelta(days=13), send=lambda *_: None)
    assert _server(engine, server_id).state == ServerState.active
    work.tick(engine, now=start + timedelta(days=14, minutes=1), send=lambda *_: None)
    assert _server(engine, server_id).state == ServerState.suspended
    _, suspended_mail = mailbox.wait_for(2)
    assert "suspended" in str(suspended_mail["Subject"])
    domain = _server(engine, server_id).domain
    assert domain in suspended_mail.get_content()
    assert suspended_mail["To"] == mail["To"]
    [suspend] = _jobs(engine, server_id)
    assert suspend.kind == "suspend"
    assert _drive(engine, suspend.id).state == JobState.succeeded
    assert [p for p, _ in playbooks] == ["suspend.yml"]
    # A second tick decides nothing new.
    work.tick(engine, now=start + timedelta(days=15), send=lambda *_: None)
    assert len(_jobs(engine, server_id)) == 1
    assert len(mailbox.messages) == 2, "nothing new, nothing told"

    _post(client, se.event("invoice.paid", se.invoice("in_2", customer, sub_id, "paid", 1)))
    _process(engine, sent, now=start + timedelta(days=16))
    assert _server(engine, server_id).state == ServerState.active
    resume = _jobs(engine, server_id)[-1]
    assert resume.kind == "resume"
    assert _drive(engine, resume.id).state == JobState.succeeded
    assert [p for p, _ in playbooks] == ["suspend.yml", "resume.yml"]
    resumed_mail = mailbox.wait_for(3)[2]
    assert "resumed" in str(resumed_mail["Subject"])
    assert domain in resumed_mail.get_content()
    assert _audit(engine) == [
        "billing.past_due",
        "billing.suspend",
        "billing.paid_up",
        "billing.resume",
    ]


def test_staff_suspension_is_not_lifted_by_payment(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    server_id, customer, sub_id = _paying_server(engine, ServerState.suspended)
    _post(
        client, se.event("invoice.payment_failed", se.invoice("in_3", customer, sub_id, "open", 1))
    )
    _post(client, se.event("invoice.paid", se.invoice("in_3", customer, sub_id, "paid", 1)))
    _process(engine, sent)
    assert _server(engine, server_id).state == ServerState.suspended
    assert _jobs(engine, server_id) == []


def test_cancellation_final_backup_then_deprovision_after_retention(
    client: TestClient,
    engine: Engine,
    billing_on: FakeGateway,
    sent: list,
    playbooks: list,
    mailbox: Mailbox,
) -> None:
    server_id, customer, sub_id = _paying_server(engine)
    ended = utcnow()
    _post(
        client,
        se.event(
            "customer.subscription.deleted",
            se.subscription(sub_id, customer, "canceled", str(server_id)),
        ),
    )
    # A stale "active" snapshot arriving later cannot revive it.
    _post(
        client,
        se.event(
            "customer.subscription.updated",
            se.subscription(sub_id, customer, "active", str(server_id)),
            created=int(ended.timestamp()) + 60,
        ),
    )
    _process(engine, sent, now=ended)
    assert _server(engine, server_id).state == ServerState.suspended
    [mail] = mailbox.wait_for(1)
    domain = _server(engine, server_id).domain
    assert str(mail["Subject"]) == f"Subscription ended for {domain}"
    assert "final backup" in mail.get_content()
    removal = (_ended_at(engine, server_id) + timedelta(days=30)).strftime("%Y-%m-%d")
    assert f"removed on {removal}" in mail.get_content()
    [backup] = _jobs(engine, server_id)
    assert backup.kind == "final_backup"
    assert _drive(engine, backup.id).state == JobState.succeeded
    assert [p for p, _ in playbooks] == ["suspend.yml", "backup.yml"]
    assert playbooks[1][1]["mastodon_backup_label"] == "final"

    work.tick(engine, now=ended + timedelta(days=29), send=lambda *_: None)
    assert _server(engine, server_id).state == ServerState.suspended
    work.tick(engine, now=ended + timedelta(days=30, minutes=1), send=lambda *_: None)
    assert _server(engine, server_id).state == ServerState.deprovisioning
    deprovision = _jobs(engine, server_id)[-1]
    assert deprovision.kind == "deprovision"
    assert _drive(engine, deprovision.id).state == JobState.succeeded
    assert playbooks[-1][0] == "deprovision.yml"
    assert playbooks[-1][1]["mastodon_deprovision_confirm"] == _server(engine, server_id).domain
    server = _server(engine, server_id)
    assert (server.state, server.host_id, server.slot) == (ServerState.deleted, None, None)
    assert _audit(engine) == ["billing.subscription_ended", "billing.deprovision"]
    assert len(mailbox.messages) == 1, "the ended mail is sent once"


def test_an_unpaid_order_whose_subscription_expires_is_cancelled(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    server_id, customer, sub_id = _paying_server(engine, ServerState.awaiting_payment, False)
    _post(
        client,
        se.event(
            "customer.subscription.deleted",
            se.subscription(sub_id, customer, "incomplete_expired", str(server_id)),
        ),
    )
    _process(engine, sent)
    assert _server(engine, server_id).state == ServerState.deleted


# -- 1,000 deliveries -------------------------------------------------------------


def _script(kind: str, customer: str, sub: str, server: str, t0: int) -> list[dict[str, Any]]:
    inv = f"in_{sub}"
    steps: dict[str, list[tuple[str, dict[str, Any]]]] = {
        "new": [
            ("customer.subscription.created", se.subscription(sub, customer, "incomplete", server)),
            (
                "checkout.session.completed",
                se.checkout_completed(f"cs_{sub}", customer, sub, server),
            ),
            ("invoice.finalized", se.invoice(inv, customer, sub, "open", 0, server)),
            ("invoice.paid", se.invoice(inv, customer, sub, "paid", 0, server)),
            ("customer.subscription.updated", se.subscription(sub, customer, "active", server)),
        ],
        "fail": [
            ("invoice.finalized", se.invoice(inv, customer, sub, "open", 0)),
            ("invoice.payment_failed", se.invoice(inv, customer, sub, "open", 1)),
            ("invoice.payment_failed", se.invoice(inv, customer, sub, "open", 2)),
            ("customer.subscription.updated", se.subscription(sub, customer, "past_due", server)),
            ("invoice.updated", se.invoice(inv, customer, sub, "open", 2)),
        ],
        "recover": [
            ("invoice.finalized", se.invoice(inv, customer, sub, "open", 0)),
            ("invoice.payment_failed", se.invoice(inv, customer, sub, "open", 1)),
            ("invoice.payment_failed", se.invoice(inv, customer, sub, "open", 2)),
            ("invoice.payment_succeeded", se.invoice(inv, customer, sub, "paid", 3)),
            ("invoice.paid", se.invoice(inv, customer, sub, "paid", 3)),
        ],
        "end": [
            ("customer.subscription.updated", se.subscription(sub, customer, "active", server)),
            ("invoice.payment_failed", se.invoice(inv, customer, sub, "open", 1)),
            ("customer.subscription.updated", se.subscription(sub, customer, "past_due", server)),
            ("customer.subscription.deleted", se.subscription(sub, customer, "canceled", server)),
            ("invoice.voided", se.invoice(inv, customer, sub, "void", 1)),
        ],
    }
    return [se.event(kind_, obj, created=t0 + i) for i, (kind_, obj) in enumerate(steps[kind])]


def test_a_thousand_shuffled_deliveries_with_duplicates(
    client: TestClient, engine: Engine, billing_on: FakeGateway, sent: list
) -> None:
    rng = random.Random(5)
    kinds = ["new", "fail", "recover", "end"]
    servers: dict[uuid.UUID, str] = {}
    unique: list[dict[str, Any]] = []
    t0 = int(utcnow().timestamp())
    for n in range(140):
        kind = kinds[n % 4]
        state = ServerState.awaiting_payment if kind == "new" else ServerState.active
        server_id, customer, sub_id = _paying_server(engine, state, placed=kind != "new")
        if kind == "new":
            with Session(engine) as session:
                row = session.exec(
                    select(BillingSubscription).where(BillingSubscription.server_id == server_id)
                ).one()
                row.stripe_subscription_id, row.status, row.paid_at = None, "pending", None
                session.add(row)
                session.commit()
        servers[server_id] = kind
        unique += _script(kind, customer, sub_id, str(server_id), t0)
    assert len(unique) == 700
    deliveries = unique + [rng.choice(unique) for _ in range(300)]
    rng.shuffle(deliveries)
    for body in deliveries:
        assert _post(client, body).status_code == 200
    assert len(sent) == 700
    # The broker may hand a task out twice, and in any order.
    sent.extend(rng.sample(sent, 100))
    rng.shuffle(sent)
    assert _process(engine, sent) == 700

    expected = {
        "new": (ServerState.provisioning, "good", ["provision"]),
        "fail": (ServerState.active, "past_due", []),
        "recover": (ServerState.active, "good", []),
        "end": (ServerState.suspended, "good", ["final_backup"]),
    }
    with Session(engine) as session:
        assert session.exec(select(StripeEvent)).all().__len__() == 700
        assert all(e.processed_at is not None for e in session.exec(select(StripeEvent)))
        for server_id, kind in servers.items():
            server = session.get(Server, server_id)
            assert server is not None
            account = session.get(BillingAccount, server.organisation_id)
            assert account is not None
            jobs = session.exec(select(Job.kind).where(Job.server_id == server_id)).all()
            assert (server.state, account.status, sorted(jobs)) == expected[kind], kind
        assert len(session.exec(select(Invoice)).all()) == 140
