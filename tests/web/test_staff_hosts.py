"""Staff change a host from the console: its capacity, and draining it so
placement passes it by while its servers stay."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.audit.models import AuditEntry
from controlplane.fleet import placement
from controlplane.fleet.models import Host, HostState
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from tests import factories
from tests.factories import World
from tests.web.helpers import csrf_of, sign_in


def _host(engine: Engine, name: str) -> Host:
    with Session(engine) as session:
        host = session.exec(select(Host).where(Host.name == name)).one()
        session.expunge(host)
        return host


def test_staff_drain_a_host_and_change_its_capacity(
    web: TestClient, world: World, engine: Engine
) -> None:
    sign_in(web, world.tokens["operator"])
    page = web.get("/staff/hosts")
    assert page.status_code == 200
    host_id = world.ids["empty_host"]
    assert f'action="/staff/hosts/{host_id}"' in page.text
    token = csrf_of(page)

    # Bad input changes nothing.
    for data in ({"capacity": "-1"}, {"capacity": "many"}, {"state": "pending"}):
        refused = web.post(f"/staff/hosts/{host_id}", data={**data, "csrf_token": token})
        assert refused.status_code == 422, data
    assert web.post(f"/staff/hosts/{host_id}", data={"state": "draining"}).status_code == 403
    before = _host(engine, "h-empty")
    assert (before.state, before.capacity) == (HostState.active, 5)

    answer = web.post(
        f"/staff/hosts/{host_id}",
        data={"capacity": "7", "state": "draining", "csrf_token": token},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    after = _host(engine, "h-empty")
    assert (after.state, after.capacity) == (HostState.draining, 7)
    assert "draining: keeps its servers" in web.get("/staff/hosts").text
    with Session(engine) as session:
        [entry] = session.exec(select(AuditEntry).where(AuditEntry.action == "host.update")).all()
        assert entry.details["fields"] == ["capacity", "state"]
        # Placement passes the draining host by: a new server lands on h1.
        org = factories.organisation(session)
        server = factories.server(
            session, org, factories.plan(session, "drain-test"), ServerState.provisioning
        )
        assert placement.place(session, server).name == "h1"
        session.rollback()

    # Someone of an organisation cannot change hosts.
    web.cookies.clear()
    sign_in(web, world.tokens["owner"])
    owner_page = web.get(f"/o/{world.ids['org']}/servers")
    forged = web.post(
        f"/staff/hosts/{host_id}",
        data={"state": "active", "csrf_token": csrf_of(owner_page)},
    )
    assert forged.status_code == 403
    assert _host(engine, "h-empty").state == HostState.draining


@pytest.mark.parametrize("state", ["active", "disabled"])
def test_a_drained_host_can_be_put_back(
    web: TestClient, world: World, engine: Engine, state: str
) -> None:
    sign_in(web, world.tokens["staff_admin"])
    host_id = world.ids["host"]
    token = csrf_of(web.get("/staff/hosts"))
    for wanted in ("draining", state):
        web.post(f"/staff/hosts/{host_id}", data={"state": wanted, "csrf_token": token})
        assert _host(engine, "h1").state == HostState(wanted)
    assert _host(engine, "h1").capacity == 5
    with Session(engine) as session:
        assert session.get(Server, world.ids["server"]).host_id == host_id  # type: ignore[union-attr]
