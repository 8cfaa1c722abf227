"""The same SSO flow against a real Keycloak, when one is given.

    HERD_TEST_KEYCLOAK_URL=http://127.0.0.1:8080 \\
    HERD_TEST_KEYCLOAK_USER=admin HERD_TEST_KEYCLOAK_PASSWORD=admin \\
    .venv/bin/python -m pytest tests/identity/test_real_keycloak.py

(for instance `docker run -p 127.0.0.1:8080:8080 -e KC_BOOTSTRAP_ADMIN_USERNAME=admin
-e KC_BOOTSTRAP_ADMIN_PASSWORD=admin quay.io/keycloak/keycloak:26.4 start-dev`).
It works in a realm of its own, named herdtest<random>-acme, and deletes it at
the end. The organisation's IdP is Keycloak's own master realm, read through
its discovery document, so Keycloak must reach itself at the URL given.
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator

import pytest
import requests
from keycloak import KeycloakAdmin

from controlplane.identity import (
    Branding,
    IdentitySettings,
    IdentitySpace,
    KeycloakIdentity,
    OidcUpstream,
    SamlUpstream,
)

URL = os.environ.get("HERD_TEST_KEYCLOAK_URL", "")
USER = os.environ.get("HERD_TEST_KEYCLOAK_USER", "admin")
PASSWORD = os.environ.get("HERD_TEST_KEYCLOAK_PASSWORD", "admin")

pytestmark = pytest.mark.skipif(
    not URL,
    reason="no real Keycloak: set HERD_TEST_KEYCLOAK_URL (and HERD_TEST_KEYCLOAK_USER/"
    "PASSWORD, default admin/admin) to run the SSO flow against one",
)


@pytest.fixture
def identity() -> KeycloakIdentity:
    return KeycloakIdentity(
        IdentitySettings(
            url=URL,
            admin_client_id="admin-cli",
            admin_username=USER,
            admin_password=PASSWORD,
            realm_prefix=f"herdtest{secrets.token_hex(3)}-",
        )
    )


@pytest.fixture
def space(identity: KeycloakIdentity) -> Iterator[IdentitySpace]:
    space = identity.ensure_space(
        organisation_id=uuid.uuid4(), slug="acme", branding=Branding("Acme Corporation")
    )
    yield space
    identity.delete_space(space)


@pytest.fixture
def inspector(space: IdentitySpace) -> KeycloakAdmin:
    return KeycloakAdmin(
        server_url=URL,
        username=USER,
        password=PASSWORD,
        realm_name=space.realm,
        user_realm_name="master",
    )


def accepts(realm: str, client_id: str, secret: str) -> bool:
    answer = requests.post(
        f"{URL.rstrip('/')}/realms/{realm}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=10,
    )
    # Refused either way (the client has no service account); the wording
    # says whether the secret got past client authentication.
    return answer.json().get("error_description") != "Invalid client or Invalid client credentials"


def test_the_sso_flow_against_a_real_keycloak(
    identity: KeycloakIdentity, space: IdentitySpace, inspector: KeycloakAdmin
) -> None:
    server_id = uuid.uuid4()
    domain = "social.acme.example"

    client = identity.ensure_server_client(space, server_id=server_id, domain=domain)
    again = identity.ensure_server_client(space, server_id=server_id, domain=domain)
    assert again.internal_id == client.internal_id
    ours = [c for c in inspector.get_clients() if c["clientId"] == client.client_id]
    assert len(ours) == 1
    stored = ours[0]
    assert stored["redirectUris"] == [
        "https://social.acme.example/auth/auth/openid_connect/callback"
    ]
    assert stored["publicClient"] is False
    assert stored["standardFlowEnabled"] is True
    assert stored["directAccessGrantsEnabled"] is False
    assert stored["attributes"]["pkce.code.challenge.method"] == "S256"
    realm = inspector.get_realm(space.realm)
    assert realm["displayName"] == "Acme Corporation"

    old = identity.client_secret(space, server_id)
    assert accepts(space.realm, client.client_id, old)
    rotation = identity.rotate_client_secret(space, server_id)
    assert rotation.secret != old
    assert identity.client_secret(space, server_id) == rotation.secret
    assert accepts(space.realm, client.client_id, rotation.secret)
    if rotation.previous_valid_until is None:
        assert not accepts(space.realm, client.client_id, old)
    identity.retire_previous_secret(space, server_id)

    # The organisation's IdP: this Keycloak's own master realm.
    discovery = f"{URL.rstrip('/')}/realms/master/.well-known/openid-configuration"
    issuer = requests.get(discovery, timeout=10).json()["issuer"]
    upstream = OidcUpstream(
        issuer=issuer, discovery_url=discovery, client_id="herd-test", client_secret="x"
    )
    identity.ensure_identity_provider(space, upstream)
    identity.ensure_identity_provider(space, upstream)
    assert inspector.get_idp("idp")["config"]["clientId"] == "herd-test"
    assert len(inspector.get_idp_mappers("idp")) == 4

    saml = SamlUpstream(
        entity_id="https://idp.acme.example/saml",
        single_sign_on_url="https://idp.acme.example/sso",
        signing_certificate="MIIBszCCARwCCQDnrG2Wb6XZ0jANBgkqhkiG9w0BAQsFADAeMRwwGgYDVQQDDBNp",
        alias="acme-saml",
    )
    identity.ensure_identity_provider(space, saml)
    assert len(inspector.get_idp_mappers("acme-saml")) == 4
    assert identity.remove_identity_provider(space, "acme-saml") is True

    assert identity.delete_server_client(space, server_id) is True
    assert identity.delete_server_client(space, server_id) is False
