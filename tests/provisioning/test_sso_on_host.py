"""Single sign-on on a real test host: the organisation switches SSO on
through the API, the `sso` job runs the real sso.yml over SSH, and the
server's .env.production carries its OIDC client; a rotation deploys the new
secret; SSO off takes the settings away and deletes the client in Keycloak
(the stand-in, tests/identity/standin.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.crypto import secret_box
from controlplane.identity import get_identity
from controlplane.identity.models import ServerSso
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from provisioning.registry import pipelines
from tests.hosts.harness import TestFleet
from tests.identity.standin import SERVICE_CLIENT, SERVICE_SECRET, KeycloakStandIn
from tests.playbooks.test_templates import ruby_dotenv
from tests.provisioning.placed import SETUP, Placed, create_setup_job, run_to_success


@pytest.fixture
def keycloak(monkeypatch: pytest.MonkeyPatch) -> Iterator[KeycloakStandIn]:
    with KeycloakStandIn() as standin:
        for name, value in {
            "HERD_KEYCLOAK_URL": standin.url,
            "HERD_KEYCLOAK_PUBLIC_URL": "https://sso.provider.test",
            "HERD_KEYCLOAK_ADMIN_CLIENT_ID": SERVICE_CLIENT,
            "HERD_KEYCLOAK_ADMIN_CLIENT_SECRET": SERVICE_SECRET,
        }.items():
            monkeypatch.setenv(name, value)
        get_identity.cache_clear()
        yield standin
    get_identity.cache_clear()


def _env(fleet: TestFleet, setup: Placed) -> dict[str, str]:
    """The server's .env.production as Mastodon reads it."""
    return ruby_dotenv(
        fleet["h1"].path(f"/home/mastodon{setup.slot}/live/.env.production").read_text()
    )


def _secret(engine: Engine, server_id: uuid.UUID) -> str:
    with Session(engine) as session:
        row = session.get(ServerSso, server_id)
        assert row is not None
        return secret_box().decrypt(row.secret_encrypted)


def _org_url(engine: Engine, server_id: uuid.UUID) -> str:
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        return f"/api/v1/organisations/{server.organisation_id}/sso"


@pytest.mark.hosts
@pytest.mark.slow
@pytest.mark.postgres
# Herd's own database plays no part in what lands on the host: one kind is enough.
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_sso_on_rotated_and_off_on_a_host(
    db_kind: str,
    engine: Engine,
    client: TestClient,
    placed: tuple[Placed, TestFleet],
    keycloak: KeycloakStandIn,
) -> None:
    setup, fleet = placed
    run_to_success(engine, create_setup_job(engine, setup), {"setup": SETUP})
    with Session(engine) as session:
        server = session.get(Server, setup.server_id)
        assert server is not None
        server.state = ServerState.active  # as the provision pipeline leaves it
        session.add(server)
        session.commit()
    assert _env(fleet, setup)["OIDC_ENABLED"] == "false"

    url = _org_url(engine, setup.server_id)
    body = {"enabled": True, "display_name": "City login", "omniauth_only": True}
    answer = client.put(url, json=body, headers=setup.owner)
    assert answer.status_code == 200, answer.text
    run_to_success(engine, uuid.UUID(answer.json()["jobs"][0]), pipelines())

    env = _env(fleet, setup)
    realm = answer.json()["realm"]
    secret = _secret(engine, setup.server_id)
    assert env["OIDC_ENABLED"] == "true"
    assert env["OIDC_DISPLAY_NAME"] == "City login"
    assert env["OIDC_ISSUER"] == f"https://sso.provider.test/realms/{realm}"
    assert env["OIDC_DISCOVERY"] == "true"
    assert env["OIDC_SCOPE"] == "openid,profile,email"
    assert env["OIDC_UID_FIELD"] == "sub"
    assert env["OIDC_CLIENT_ID"] == f"mastodon-{setup.server_id}"
    assert env["OIDC_CLIENT_SECRET"] == secret
    assert env["OIDC_REDIRECT_URI"] == (
        "https://placed.herd-test.social/auth/auth/openid_connect/callback"
    )
    assert env["OIDC_USE_PKCE"] == "true"
    assert env["OMNIAUTH_ONLY"] == "true"
    assert "ONE_CLICK_SSO_LOGIN" not in env
    assert len(keycloak.realm(realm).clients) == 1

    rotated = client.post(f"/api/v1/servers/{setup.server_id}/sso/rotate", headers=setup.owner)
    assert rotated.status_code == 202, rotated.text
    run_to_success(engine, uuid.UUID(rotated.json()["id"]), pipelines())
    new_secret = _secret(engine, setup.server_id)
    assert new_secret != secret
    assert _env(fleet, setup)["OIDC_CLIENT_SECRET"] == new_secret

    off = client.put(url, json={"enabled": False}, headers=setup.owner)
    assert off.status_code == 200, off.text
    run_to_success(engine, uuid.UUID(off.json()["jobs"][0]), pipelines())
    env = _env(fleet, setup)
    assert env["OIDC_ENABLED"] == "false"
    assert [key for key in env if key.startswith("OIDC_") or key == "OMNIAUTH_ONLY"] == [
        "OIDC_ENABLED"
    ]
    assert keycloak.realm(realm).clients == {}
