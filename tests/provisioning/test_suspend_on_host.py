"""Staff suspension on a real test host: the API call makes a `suspend` job,
the job runs the real suspend.yml over SSH, and the host has the maintenance
page up (the page rendered, the flag nginx serves it by, Mastodon stopped);
resuming takes the page down and Mastodon answers again."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.fleet.models import Host
from controlplane.fleet.placement import Slot
from controlplane.jobs.models import Job
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from provisioning.registry import pipelines
from tests.hosts import webcheck
from tests.hosts.harness import TestFleet
from tests.provisioning.placed import SETUP, Placed, create_setup_job, run_to_success


def _health_url(engine: Engine, server_id: uuid.UUID) -> str:
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        host = session.get(Host, server.host_id)
        assert host is not None
        assert server.slot is not None
        return f"http://{host.address}:{Slot.on(host, server.slot).web_port}/health"


def _latest_job(engine: Engine, server_id: uuid.UUID, kind: str) -> uuid.UUID:
    with Session(engine) as session:
        job = session.exec(
            select(Job)
            .where(Job.server_id == server_id, Job.kind == kind)
            .order_by(col(Job.id).desc())
        ).first()
        assert job is not None
        return job.id


@pytest.mark.hosts
@pytest.mark.slow
@pytest.mark.postgres
# Herd's own database plays no part in what lands on the host: one kind is enough.
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_staff_suspension_puts_the_maintenance_page_up_on_the_host(
    db_kind: str, engine: Engine, client: TestClient, placed: tuple[Placed, TestFleet]
) -> None:
    setup, fleet = placed
    run_to_success(engine, create_setup_job(engine, setup), {"setup": SETUP})
    with Session(engine) as session:
        server = session.get(Server, setup.server_id)
        assert server is not None
        server.state = ServerState.active  # as the provision pipeline leaves it
        session.add(server)
        session.commit()
    host = fleet["h1"]
    folder = f"/var/www/herd/mastodon{setup.slot}"
    health_url = _health_url(engine, setup.server_id)
    assert webcheck.wait_for(lambda: webcheck.answers_ok(health_url))
    assert not host.path(f"{folder}/maintenance.on").exists()

    suspended = client.post(
        f"/api/v1/servers/{setup.server_id}/suspend",
        json={"reason": "abuse report 42"},
        headers=setup.operator,
    )
    assert suspended.status_code == 200, suspended.text
    run_to_success(engine, _latest_job(engine, setup.server_id, "suspend"), pipelines())
    assert host.path(f"{folder}/maintenance.on").exists()
    page = host.read_text(f"{folder}/maintenance.html")
    assert "<html" in page.lower()
    assert not webcheck.answers_ok(health_url), "Mastodon still answers while suspended"

    resumed = client.post(
        f"/api/v1/servers/{setup.server_id}/resume", json={}, headers=setup.operator
    )
    assert resumed.status_code == 200, resumed.text
    run_to_success(engine, _latest_job(engine, setup.server_id, "resume"), pipelines())
    assert not host.path(f"{folder}/maintenance.on").exists()
    assert webcheck.wait_for(lambda: webcheck.answers_ok(health_url))
