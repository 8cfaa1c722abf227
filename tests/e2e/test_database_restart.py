"""Herd's PostgreSQL crashes and comes back in the middle of provisioning.

Herd's database here is a cluster of the test's own (tests/e2e/private_services.py),
stopped with `pg_ctl -m immediate` (every connection cut, as in a crash)
while the provision playbook runs over SSH, and started again a little
later. The API answers 503 on /healthz meanwhile; the job goes on (its
events and checkpoints wait for the database, its lease lets no other
worker take it twice), and the server ends active with one job and Mastodon's
database set up once.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from controlplane import migrate
from controlplane.jobs.models import Job
from controlplane.servers.models import Server
from tests.e2e import private_services
from tests.e2e.private_services import PrivatePostgres
from tests.e2e.stack import Stack
from tests.e2e.test_faults import _provision_events

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_kind", ["postgresql"]),
]


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivatePostgres]:
    with private_services.running_postgres() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(private_postgres: PrivatePostgres) -> str:
    """Herd's database on the private cluster (overrides the suite's)."""
    migrate.upgrade(private_postgres.url)
    return private_postgres.url


def test_postgresql_restarted_mid_provisioning(
    db_kind: str, stack: Stack, engine: Engine, private_postgres: PrivatePostgres
) -> None:
    stack.register_hosts()
    stack.start_worker().wait_ready()
    server_id = stack.order("social.dbcrash-herd.social")
    stack.approve(server_id)

    def playbook_under_way() -> str | None:
        jobs = stack.jobs(server_id)
        if jobs and len(_provision_events(stack, jobs[0]["id"])) >= 10:
            return jobs[0]["id"]
        return None

    job_id = stack.wait_until(playbook_under_way, 600)
    private_postgres.stop()
    health = httpx.get(f"{stack.api}/healthz", timeout=30)
    assert health.status_code == 503, health.text
    # Long enough for the worker to meet the outage (it records an event
    # per task and renews its lease every few seconds).
    time.sleep(10)
    private_postgres.start()

    server = stack.wait_for_state(server_id, "active", timeout=900)
    assert server["version"] == "4.5.1"
    assert httpx.get(f"{stack.api}/healthz", timeout=30).status_code == 200
    detail = stack.ok("operator", "GET", f"/jobs/{job_id}")
    assert detail["state"] == "succeeded", detail
    with Session(engine) as session:
        row = session.get(Server, uuid.UUID(server_id))
        assert row is not None
        assert session.exec(select(func.count()).select_from(Job)).one() == 1
    host = stack.fleet["h1"]
    assert list(host.standin.databases()) == [f"mastodon_{row.id.hex}"]
    assert len(host.standin.calls(contains="rails db:setup")) == 1
