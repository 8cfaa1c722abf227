"""Benchmark: Stripe webhook ingestion, on SQLite and PostgreSQL.

Posts signed deliveries (30% of them duplicates of earlier ones) to the
webhook endpoint through the ASGI app, then processes every stored event
the way a worker does. Prints events per second accepted (verified and
stored, duplicates included) and processed (folded into the snapshots, the
organisation's state derived again).

    .venv/bin/python -m bench.billing_webhooks [--events 2000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url
from sqlmodel import Session

import controlplane.models  # noqa: F401
from controlplane import migrate
from controlplane.billing import stripe_client, work
from controlplane.billing.models import BillingAccount, BillingSubscription, Plan
from controlplane.billing.settings import get_billing_settings
from controlplane.db import dispose_engines, engine_for
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from controlplane.tenancy.models import Organisation
from tests.billing import stripe_events as se

POSTGRES_SERVER_URL = os.environ.get(
    "HERD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _seed(url: str, organisations: int) -> list[tuple[str, str, str]]:
    engine = engine_for(url)
    out = []
    with Session(engine) as session:
        plan = Plan(code="small", name="Small", monthly_price_cents=4900, max_users=1, storage_gb=1)
        session.add(plan)
        for n in range(organisations):
            org = Organisation(slug=f"o{n}", name=f"Org {n}")
            session.add(org)
            session.flush()
            server = Server(
                organisation_id=org.id,
                plan_id=plan.id,
                domain=f"o{n}.bench.social",
                title="b",
                state="active",
            )
            session.add(server)
            session.flush()
            customer, sub = f"cus_{n}", f"sub_{n}"
            session.add(BillingAccount(organisation_id=org.id, stripe_customer_id=customer))
            session.add(
                BillingSubscription(
                    server_id=server.id,
                    organisation_id=org.id,
                    plan_id=plan.id,
                    stripe_subscription_id=sub,
                    status="active",
                )
            )
            out.append((customer, sub, str(server.id)))
        session.commit()
    return out


def _events(seeded: list[tuple[str, str, str]], unique: int) -> list[dict]:
    events: list[dict] = []
    t0 = int(time.time())
    i = 0
    while len(events) < unique:
        customer, sub, server = seeded[i % len(seeded)]
        inv = f"in_{i}"
        kind = i % 3
        if kind == 0:
            events.append(se.event("invoice.paid", se.invoice(inv, customer, sub, "paid"), t0 + i))
        elif kind == 1:
            events.append(
                se.event(
                    "invoice.payment_failed", se.invoice(inv, customer, sub, "open", 1), t0 + i
                )
            )
        else:
            events.append(
                se.event(
                    "customer.subscription.updated",
                    se.subscription(sub, customer, "active", server),
                    t0 + i,
                )
            )
        i += 1
    return events


def run(backend: str, total: int) -> None:
    from fastapi.testclient import TestClient

    from controlplane.app import create_app

    workdir = Path(tempfile.mkdtemp(prefix="herd-bench-"))
    name = None
    if backend == "sqlite":
        url = f"sqlite:///{workdir / 'herd.sqlite3'}"
    else:
        name = f"herd_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(_dsn(POSTGRES_SERVER_URL), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    os.environ.update(
        HERD_DATABASE_URL=url,
        HERD_DATA_DIR=str(workdir),
        HERD_SECRET_KEY="bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        HERD_STRIPE_API_KEY="sk_test_bench",
        HERD_STRIPE_WEBHOOK_SECRET=se.WEBHOOK_SECRET,
    )
    get_settings.cache_clear()
    get_billing_settings.cache_clear()
    try:
        migrate.upgrade(url)
        seeded = _seed(url, 200)
        unique = int(total * 0.7)
        events = _events(seeded, unique)
        rng = random.Random(1)
        deliveries = events + [rng.choice(events) for _ in range(total - unique)]
        rng.shuffle(deliveries)
        signed = [se.signed(body) for body in deliveries]
        queued: list[str] = []
        work._send = lambda task, arg: queued.append(arg)  # type: ignore[assignment]
        stripe_client.use_gateway(se.FakeGateway())
        with TestClient(create_app()) as client:
            started = time.perf_counter()
            for payload, headers in signed:
                response = client.post(se.WEBHOOK_PATH, content=payload, headers=headers)
                assert response.status_code == 200, response.text
            accepted = time.perf_counter() - started
        engine = engine_for(url)
        started = time.perf_counter()
        processed = sum(work.process_event(engine, event_id) for event_id in queued)
        processing = time.perf_counter() - started
        assert processed == unique == len(queued)
        print(
            f"{backend:10s} deliveries={total} unique={unique} duplicates={total - unique}  "
            f"accepted {total / accepted:7.0f} ev/s  processed {processed / processing:7.0f} ev/s"
        )
    finally:
        stripe_client.use_gateway(None)
        dispose_engines()
        if name is not None:
            with psycopg.connect(_dsn(POSTGRES_SERVER_URL), autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    for backend in args.backends.split(","):
        run(backend, args.events)


if __name__ == "__main__":
    main()
