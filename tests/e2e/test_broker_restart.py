"""The broker (Redis) dies and comes back empty in the middle of provisioning.

The broker here is a Redis of the test's own (tests/e2e/private_services.py),
SIGKILLed while the provision playbook runs, so every message it held is
gone. A second server is ordered and approved during the outage: the API
still answers (sending the job fails; the job is recorded), /healthz says the
broker is down, and once Redis is back the reconciler sends what was never
delivered. Both servers end active, each provisioned by one job.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from controlplane.jobs.models import Job
from tests.e2e import private_services
from tests.e2e.private_services import PrivateRedis
from tests.e2e.stack import Stack
from tests.e2e.test_faults import _provision_events

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_kind", ["postgresql"]),
]


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with private_services.running_redis() as server:
        yield server


@pytest.fixture
def broker_url(private_redis: PrivateRedis) -> str:
    """The stack's broker is the private Redis (overrides tests/e2e/conftest.py)."""
    return private_redis.url


def test_the_broker_restarted_empty_mid_provisioning(
    db_kind: str, stack: Stack, engine: Engine, private_redis: PrivateRedis, start_fleet: Any
) -> None:
    stack.register_hosts()
    # A host a slot: the second server goes to h2.
    (h2,) = start_fleet(["h2"])
    registration = h2.registration()
    registration["capacity"] = registration.pop("slots")
    stack.ok("operator", "POST", "/hosts", json=registration)
    stack.start_worker().wait_ready()
    first = stack.order("one.broker-herd.social")
    stack.approve(first)

    def playbook_under_way() -> str | None:
        jobs = stack.jobs(first)
        if jobs and len(_provision_events(stack, jobs[0]["id"])) >= 10:
            return jobs[0]["id"]
        return None

    stack.wait_until(playbook_under_way, 600)
    private_redis.stop()
    health = httpx.get(f"{stack.api}/healthz", timeout=60)
    assert health.status_code == 503, health.text
    # Ordered and approved while the broker is down: nothing is lost.
    second = stack.order("two.broker-herd.social")
    stack.approve(second)
    assert stack.server(second)["state"] == "provisioning"
    time.sleep(5)
    private_redis.start()

    for server_id in (first, second):
        assert stack.wait_for_state(server_id, "active", timeout=900)["version"] == "4.5.1"
        (job,) = stack.jobs(server_id)
        assert job["state"] == "succeeded"
    assert httpx.get(f"{stack.api}/healthz", timeout=30).status_code == 200
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Job)).one() == 2
    for host in (stack.fleet["h1"], h2):
        assert len(host.standin.calls(contains="rails db:setup")) == 1
