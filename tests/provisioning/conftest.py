"""The `placed` fixture: see tests/provisioning/placed.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.auth.roles import OrgRole, Scope, StaffRole
from controlplane.crypto import secret_box
from controlplane.fleet import placement
from controlplane.fleet.models import Host
from controlplane.servers import secrets
from controlplane.servers.lifecycle import ServerState
from controlplane.settings import get_settings
from tests import factories
from tests.hosts.harness import TestFleet
from tests.hosts.mastodon_repo import MastodonRepo
from tests.provisioning.placed import PLAYBOOK_VARS, SKIP_TAGS, Placed, drop_tenant_database


@pytest.fixture
def placed(
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
    start_fleet: Any,
    mastodon_repo: MastodonRepo,
) -> Iterator[tuple[Placed, TestFleet]]:
    """Test host h1 registered with Herd, and a server placed on it with its
    secrets; the fleet-wide settings are those the test hosts need."""
    for name, value in {
        "HERD_MASTODON_REPO_URL": mastodon_repo.url,
        "HERD_MASTODON_VERSION": "v4.5.1",
        "HERD_PLAYBOOK_VARS": json.dumps(PLAYBOOK_VARS),
        "HERD_PLAYBOOK_SKIP_TAGS": json.dumps(SKIP_TAGS),
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    fleet = start_fleet(["h1"])
    registration = fleet["h1"].registration()
    with Session(engine, expire_on_commit=False) as session:
        host = Host(
            name=registration["name"],
            address=registration["address"],
            ssh_port=registration["ssh_port"],
            ssh_user=registration["ssh_user"],
            ssh_private_key_encrypted=secret_box().encrypt(registration["ssh_private_key"]),
            web_port_base=registration["web_port_base"],
            streaming_port_base=registration["streaming_port_base"],
            capacity=registration["slots"],
        )
        session.add(host)
        org = factories.organisation(session)
        owner = factories.member(session, org, OrgRole.owner)
        _, owner_token = factories.token(session, owner)
        server = factories.server(
            session,
            org,
            factories.plan(session),
            ServerState.provisioning,
            "placed.herd-test.social",
        )
        placement.place(session, server)
        secrets.ensure(session, server.id)
        operator = factories.user(session, staff_role=StaffRole.operator)
        _, token = factories.token(session, operator, {Scope.read, Scope.write, Scope.staff})
        session.commit()
        assert server.slot is not None
        setup = Placed(
            server.id,
            server.slot,
            {"Authorization": f"Bearer {token}"},
            {"Authorization": f"Bearer {owner_token}"},
        )
    try:
        yield setup, fleet
    finally:
        drop_tenant_database(setup)
