"""The audit log: written with every change, readable by the right people,
and append-only in the database itself."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError

from tests.factories import World


def test_changes_are_audited_with_actor_and_request_id(client: TestClient, world: World) -> None:
    client.patch(
        f"/api/v1/organisations/{world.ids['org']}",
        json={"name": "Renamed"},
        headers={**world.headers("admin"), "X-Request-ID": "trace-123"},
    )
    client.post(
        f"/api/v1/servers/{world.ids['server']}/suspend",
        json={"reason": "abuse"},
        headers=world.headers("operator"),
    )
    entries = client.get(
        f"/api/v1/organisations/{world.ids['org']}/audit", headers=world.headers("owner")
    ).json()["items"]
    summary = [(e["action"], e["actor_label"]) for e in entries]
    assert summary == [
        ("organisation.update", "admin@org-a.example-herd.org"),
        ("server.suspend", "ops@provider.example-herd.org"),
    ]
    assert entries[0]["request_id"] == "trace-123"
    assert entries[0]["details"] == {"fields": ["name"]}


def test_an_organisation_sees_only_its_own_entries(client: TestClient, world: World) -> None:
    client.patch(
        f"/api/v1/organisations/{world.ids['org_b']}",
        json={"name": "B2"},
        headers=world.headers("outsider"),
    )
    mine = client.get(
        f"/api/v1/organisations/{world.ids['org']}/audit", headers=world.headers("owner")
    ).json()["items"]
    assert mine == []
    fleet = client.get("/api/v1/audit", headers=world.headers("operator")).json()["items"]
    assert [e["action"] for e in fleet] == ["organisation.update"]


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_entries SET action = 'forged'", "DELETE FROM audit_entries"],
)
def test_the_database_refuses_to_rewrite_history(
    client: TestClient, world: World, engine: Engine, statement: str
) -> None:
    client.patch(
        f"/api/v1/organisations/{world.ids['org']}",
        json={"name": "X"},
        headers=world.headers("owner"),
    )
    with pytest.raises(DatabaseError, match="append-only"), engine.begin() as connection:
        connection.execute(text(statement))
    with engine.connect() as connection:
        actions = connection.execute(text("SELECT action FROM audit_entries")).scalars().all()
    assert actions == ["organisation.update"]
