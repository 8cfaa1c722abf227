"""API tokens: only a digest stored, scoped, expiring, revocable, use recorded."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.tokens import service as tokens
from controlplane.tokens.models import ApiToken
from tests.factories import World


def _dump(engine: Engine) -> str:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_tokens")).all()
    return repr(rows)


def test_a_new_token_is_shown_once_and_only_its_digest_is_stored(
    client: TestClient, world: World, engine: Engine
) -> None:
    created = client.post(
        "/api/v1/tokens",
        json={"name": "deploy", "scopes": ["read", "write"]},
        headers=world.headers("owner"),
    )
    assert created.status_code == 201
    plaintext = created.json()["token"]
    secret_part = plaintext.split("_", 2)[2]
    assert secret_part not in _dump(engine)
    listed = client.get("/api/v1/tokens", headers=world.headers("owner")).json()["items"]
    assert all("token" not in item for item in listed)
    assert any(item["prefix"] == plaintext[: len(item["prefix"])] for item in listed)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {plaintext}"})
    assert me.json()["email"] == "owner@org-a.example-herd.org"


def test_revoked_token_stops_working_at_once(client: TestClient, world: World) -> None:
    created = client.post(
        "/api/v1/tokens",
        json={"name": "temp", "scopes": ["read"]},
        headers=world.headers("owner"),
    ).json()
    bearer = {"Authorization": f"Bearer {created['token']}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200
    revoked = client.delete(f"/api/v1/tokens/{created['id']}", headers=world.headers("owner"))
    assert revoked.json()["revoked_at"] is not None
    refused = client.get("/api/v1/me", headers=bearer)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == "Bearer"


def test_expired_and_forged_tokens_are_refused(client: TestClient, world: World) -> None:
    for token in (world.tokens["expired"], world.tokens["owner"][:-2] + "xx", "herd_x_y", "junk"):
        response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, token


def test_last_use_is_recorded_at_most_once_a_minute(engine: Engine, world: World) -> None:
    with Session(engine) as session:
        principal = tokens.authenticate(session, world.tokens["viewer"])
        session.commit()
        token = session.get(ApiToken, principal.token_id)
        assert token is not None
        first_use = token.last_used_at
        assert first_use is not None
        tokens.authenticate(session, world.tokens["viewer"], first_use + timedelta(seconds=30))
        session.commit()
        session.refresh(token)
        assert token.last_used_at == first_use
        later = first_use + timedelta(minutes=2)
        tokens.authenticate(session, world.tokens["viewer"], later)
        session.commit()
        session.refresh(token)
        assert token.last_used_at == later


def test_a_token_cannot_mint_stronger_tokens(client: TestClient, world: World) -> None:
    response = client.post(
        "/api/v1/tokens",
        json={"name": "x", "scopes": ["read", "staff"]},
        headers=world.headers("owner"),
    )
    assert response.status_code == 403
    assert "staff" in response.json()["detail"]


def test_a_read_only_token_reads_but_cannot_change(client: TestClient, world: World) -> None:
    headers = world.headers("readonly")
    assert client.get(f"/api/v1/servers/{world.ids['server']}", headers=headers).status_code == 200
    response = client.patch(
        f"/api/v1/servers/{world.ids['server']}", json={"title": "x"}, headers=headers
    )
    assert response.status_code == 403
    assert response.json()["type"] == "urn:herd:problem:insufficient-scope"


def test_staff_powers_need_the_staff_scope(client: TestClient, world: World) -> None:
    without = world.headers("staff_without_scope")
    assert client.get("/api/v1/hosts", headers=without).status_code == 403
    assert client.get("/api/v1/hosts", headers=world.headers("staff_admin")).status_code == 200


def test_an_organisation_bound_token_acts_only_there(client: TestClient, world: World) -> None:
    # The outsider joins org A as a viewer too, then binds a token to org B.
    invite = client.post(
        f"/api/v1/organisations/{world.ids['org']}/invitations",
        json={"email": "owner@org-b.example-herd.org", "role": "viewer"},
        headers=world.headers("owner"),
    ).json()
    client.post(
        "/api/v1/invitations/accept",
        json={"token": invite["token"]},
        headers=world.headers("outsider"),
    )
    bound = client.post(
        "/api/v1/tokens",
        json={"name": "b-only", "scopes": ["read"], "organisation_id": str(world.ids["org_b"])},
        headers=world.headers("outsider"),
    ).json()["token"]
    headers = {"Authorization": f"Bearer {bound}"}
    assert (
        client.get(f"/api/v1/organisations/{world.ids['org_b']}", headers=headers).status_code
        == 200
    )
    assert (
        client.get(f"/api/v1/organisations/{world.ids['org']}", headers=headers).status_code == 404
    )
    assert (
        client.get(
            f"/api/v1/organisations/{world.ids['org']}", headers=world.headers("outsider")
        ).status_code
        == 200
    )


def test_org_admins_see_and_revoke_tokens_bound_to_their_organisation(
    client: TestClient, world: World
) -> None:
    listed = client.get(
        f"/api/v1/organisations/{world.ids['org']}/tokens", headers=world.headers("admin")
    ).json()["items"]
    assert [t["id"] for t in listed] == [str(world.ids["org_token"])]
    revoked = client.delete(
        f"/api/v1/tokens/{world.ids['org_token']}", headers=world.headers("admin")
    )
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
