"""The stand-in itself answers as Keycloak does, spoken to with plain HTTP:
the other tests rely on these shapes to mean what they mean against Keycloak."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.identity.standin import ADMIN_PASSWORD, ADMIN_USER, KeycloakStandIn


class Admin:
    def __init__(self, keycloak: KeycloakStandIn) -> None:
        token = requests.post(
            f"{keycloak.url}/realms/master/protocol/openid-connect/token",
            data={
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": ADMIN_USER,
                "password": ADMIN_PASSWORD,
            },
            timeout=5,
        ).json()
        assert token["token_type"] == "Bearer"
        assert token["refresh_token"]
        self.base = f"{keycloak.url}/admin/realms"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token['access_token']}"

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.session.request(method, self.base + path, json=body, timeout=5)


@pytest.fixture
def admin(keycloak: KeycloakStandIn) -> Iterator[Admin]:
    session = Admin(keycloak)
    yield session
    session.session.close()


def test_tokens_and_bearer_are_required_as_keycloak_requires_them(
    keycloak: KeycloakStandIn,
) -> None:
    token_url = f"{keycloak.url}/realms/master/protocol/openid-connect/token"
    wrong = requests.post(
        token_url,
        data={"grant_type": "password", "client_id": "admin-cli", "username": "x", "password": "y"},
        timeout=5,
    )
    assert wrong.status_code == 401
    assert wrong.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid user credentials",
    }
    assert requests.get(f"{keycloak.url}/admin/realms", timeout=5).status_code == 401


def test_realms_answer_201_409_and_404_with_keycloaks_bodies(admin: Admin) -> None:
    created = admin("POST", "", {"realm": "r1", "enabled": True})
    assert created.status_code == 201
    assert created.content == b""
    assert created.headers["Location"].endswith("/admin/realms/r1")
    again = admin("POST", "", {"realm": "r1"})
    assert (again.status_code, again.json()) == (409, {"errorMessage": "Realm r1 already exists"})
    missing = admin("GET", "/nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "Realm not found."})
    assert admin("PUT", "/r1", {"displayName": "R"}).status_code == 204
    assert admin("GET", "/r1").json()["displayName"] == "R"
    assert admin("POST", "", {"realm": "r2", "colour": "red"}).status_code == 400


def test_clients_are_found_by_client_id_and_addressed_by_internal_id(admin: Admin) -> None:
    admin("POST", "", {"realm": "r1"})
    created = admin("POST", "/r1/clients", {"clientId": "app", "publicClient": False})
    assert created.status_code == 201
    internal_id = created.headers["Location"].rsplit("/", 1)[1]
    duplicate = admin("POST", "/r1/clients", {"clientId": "app"})
    assert duplicate.status_code == 409
    assert duplicate.json() == {"errorMessage": "Client app already exists"}

    found = admin("GET", "/r1/clients?clientId=app").json()
    assert [c["id"] for c in found] == [internal_id]
    assert admin("GET", "/r1/clients?clientId=ap").json() == []
    secret = admin("GET", f"/r1/clients/{internal_id}/client-secret").json()
    assert secret["type"] == "secret"
    assert len(secret["value"]) == 32
    regenerated = admin("POST", f"/r1/clients/{internal_id}/client-secret").json()
    assert regenerated["value"] != secret["value"]

    unknown = admin("GET", "/r1/clients/not-an-id")
    assert (unknown.status_code, unknown.json()) == (404, {"error": "Could not find client"})
    assert admin("DELETE", f"/r1/clients/{internal_id}").status_code == 204
    assert admin("DELETE", f"/r1/clients/{internal_id}").status_code == 404


def test_identity_providers_mask_secrets_and_are_replaced_whole(admin: Admin) -> None:
    admin("POST", "", {"realm": "r1"})
    provider = {
        "alias": "idp",
        "providerId": "oidc",
        "trustEmail": True,
        "config": {"clientId": "a", "clientSecret": "b", "tokenUrl": "https://t"},
    }
    assert admin("POST", "/r1/identity-provider/instances", provider).status_code == 201
    duplicate = admin("POST", "/r1/identity-provider/instances", provider)
    assert duplicate.json() == {"errorMessage": "Identity Provider idp already exists"}
    read = admin("GET", "/r1/identity-provider/instances/idp").json()
    assert read["config"]["clientSecret"] == "**********"

    replaced = {"alias": "idp", "providerId": "oidc", "config": {"clientSecret": "**********"}}
    assert admin("PUT", "/r1/identity-provider/instances/idp", replaced).status_code == 204
    after = admin("GET", "/r1/identity-provider/instances/idp").json()
    assert "tokenUrl" not in after["config"]
    assert "trustEmail" not in after
    missing = admin("GET", "/r1/identity-provider/instances/nope")
    assert (missing.status_code, missing.json()) == (404, {"error": "HTTP 404 Not Found"})

    mapper = {"name": "m", "identityProviderMapper": "oidc-user-attribute-idp-mapper"}
    assert admin("POST", "/r1/identity-provider/instances/idp/mappers", mapper).status_code == 201
    twice = admin("POST", "/r1/identity-provider/instances/idp/mappers", mapper)
    assert twice.status_code == 400
    assert twice.json() == {"errorMessage": "Failed to add mapper 'm' to identity provider [oidc]."}
    gone = admin("GET", "/r1/identity-provider/instances/idp/mappers/nope")
    assert gone.json() == {"error": "Model not found"}
