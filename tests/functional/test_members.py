"""Members, roles and invitations."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Invitation
from tests.factories import World, fingerprint


def _invite(client: TestClient, world: World, email: str, role: str = "viewer") -> dict:
    response = client.post(
        f"/api/v1/organisations/{world.ids['org']}/invitations",
        json={"email": email, "role": role},
        headers=world.headers("admin"),
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_a_newcomer_accepts_without_a_token_and_gets_a_first_one(
    client: TestClient, world: World
) -> None:
    invite = _invite(client, world, "New.Person@Example-Herd.org", "billing")
    accepted = client.post("/api/v1/invitations/accept", json={"token": invite["token"]})
    assert accepted.status_code == 201
    body = accepted.json()
    assert body["role"] == "billing"
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['api_token']}"}).json()
    assert me["email"] == "new.person@example-herd.org"
    assert me["organisations"] == {str(world.ids["org"]): "billing"}
    again = client.post("/api/v1/invitations/accept", json={"token": invite["token"]})
    assert again.status_code == 409


def test_an_existing_user_accepts_with_their_token_and_gets_no_new_one(
    client: TestClient, world: World
) -> None:
    invite = _invite(client, world, "owner@org-b.example-herd.org")
    accepted = client.post(
        "/api/v1/invitations/accept",
        json={"token": invite["token"]},
        headers=world.headers("outsider"),
    )
    assert accepted.status_code == 201
    assert accepted.json()["api_token"] is None


def test_unknown_revoked_and_expired_invitations_are_refused(
    client: TestClient, world: World, engine: Engine
) -> None:
    assert (
        client.post("/api/v1/invitations/accept", json={"token": "inv_" + "x" * 40}).status_code
        == 404
    )
    revoked = _invite(client, world, "gone@example-herd.org")
    client.delete(
        f"/api/v1/organisations/{world.ids['org']}/invitations/{revoked['id']}",
        headers=world.headers("owner"),
    )
    assert (
        client.post("/api/v1/invitations/accept", json={"token": revoked["token"]}).status_code
        == 404
    )
    late = _invite(client, world, "late@example-herd.org")
    with Session(engine) as session:
        row = session.get(Invitation, uuid.UUID(late["id"]))
        assert row is not None
        row.expires_at = utcnow() - timedelta(minutes=1)
        session.add(row)
        session.commit()
    before = fingerprint(engine)
    expired = client.post("/api/v1/invitations/accept", json={"token": late["token"]})
    assert expired.status_code == 409
    assert "expired" in expired.json()["detail"]
    assert fingerprint(engine) == before


def test_only_owners_hand_out_or_take_away_ownership(client: TestClient, world: World) -> None:
    org = world.ids["org"]
    by_admin = client.post(
        f"/api/v1/organisations/{org}/invitations",
        json={"email": "boss@example-herd.org", "role": "owner"},
        headers=world.headers("admin"),
    )
    assert by_admin.status_code == 403
    promote = client.patch(
        f"/api/v1/organisations/{org}/members/{world.ids['spare_user']}",
        json={"role": "owner"},
        headers=world.headers("admin"),
    )
    assert promote.status_code == 403
    by_owner = client.patch(
        f"/api/v1/organisations/{org}/members/{world.ids['spare_user']}",
        json={"role": "owner"},
        headers=world.headers("owner"),
    )
    assert by_owner.json()["role"] == "owner"


def test_the_last_owner_stays(client: TestClient, world: World, engine: Engine) -> None:
    org, owner = world.ids["org"], world.ids["owner_user"]
    before = fingerprint(engine)
    demote = client.patch(
        f"/api/v1/organisations/{org}/members/{owner}",
        json={"role": "admin"},
        headers=world.headers("owner"),
    )
    remove = client.delete(
        f"/api/v1/organisations/{org}/members/{owner}", headers=world.headers("owner")
    )
    assert demote.status_code == remove.status_code == 409
    assert fingerprint(engine) == before


def test_a_removed_member_loses_access_at_once(client: TestClient, world: World) -> None:
    org = world.ids["org"]
    viewer_headers = world.headers("viewer")
    assert client.get(f"/api/v1/organisations/{org}", headers=viewer_headers).status_code == 200
    me = client.get("/api/v1/me", headers=viewer_headers).json()
    response = client.delete(
        f"/api/v1/organisations/{org}/members/{me['id']}", headers=world.headers("admin")
    )
    assert response.status_code == 204
    assert client.get(f"/api/v1/organisations/{org}", headers=viewer_headers).status_code == 404


def test_a_user_creates_an_organisation_and_owns_it(client: TestClient, world: World) -> None:
    created = client.post(
        "/api/v1/organisations",
        json={"name": "City of Example", "slug": "city", "timezone": "America/Chicago"},
        headers=world.headers("viewer"),
    ).json()
    members = client.get(
        f"/api/v1/organisations/{created['id']}/members", headers=world.headers("viewer")
    ).json()["items"]
    assert [(m["email"], m["role"]) for m in members] == [
        ("viewer@org-a.example-herd.org", "owner")
    ]
    taken = client.post(
        "/api/v1/organisations",
        json={"name": "Again", "slug": "city"},
        headers=world.headers("owner"),
    )
    assert taken.status_code == 409


def test_staff_create_an_organisation_for_a_customer(client: TestClient, world: World) -> None:
    created = client.post(
        "/api/v1/organisations",
        json={"name": "Uni", "slug": "uni", "owner_email": "dean@uni-herd.edu"},
        headers=world.headers("staff_admin"),
    )
    assert created.status_code == 201
    members = client.get(
        f"/api/v1/organisations/{created.json()['id']}/members",
        headers=world.headers("staff_admin"),
    ).json()["items"]
    assert [(m["email"], m["role"]) for m in members] == [("dean@uni-herd.edu", "owner")]
    by_customer = client.post(
        "/api/v1/organisations",
        json={"name": "Sneaky", "slug": "sneaky", "owner_email": "victim@example-herd.org"},
        headers=world.headers("owner"),
    )
    assert by_customer.status_code == 403
