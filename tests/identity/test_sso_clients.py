"""Switching SSO on and off for a server: the organisation's realm, the
server's OIDC client and its secret, run through Herd's real Keycloak client
against the stand-in."""

from __future__ import annotations

import uuid

import pytest
import requests

from controlplane.identity import (
    Branding,
    IdentityError,
    IdentitySpace,
    IdentityUnavailable,
    KeycloakIdentity,
)
from tests.identity.conftest import Org
from tests.identity.standin import KeycloakStandIn

DOMAIN = "social.acme.example"
CALLBACK = "https://social.acme.example/auth/auth/openid_connect/callback"
REJECTED = "Invalid client or Invalid client credentials"
NO_SERVICE_ACCOUNT = "Client not enabled to retrieve service account"


def sso_on(identity: KeycloakIdentity, org: Org, server_id: uuid.UUID) -> IdentitySpace:
    space = identity.ensure_space(
        organisation_id=org.id, slug=org.slug, branding=Branding(org.name)
    )
    identity.ensure_server_client(space, server_id=server_id, domain=DOMAIN)
    return space


def authenticates(keycloak: KeycloakStandIn, realm: str, client_id: str, secret: str) -> bool:
    """Whether Keycloak accepts this client secret at its token endpoint. The
    Mastodon client has no service account, so the grant itself is refused
    either way; the question is whether client authentication got that far.
    (Keycloak versions differ on that refusal's status, 400 or 401, but not
    on its description.)"""
    answer = requests.post(
        f"{keycloak.url}/realms/{realm}/protocol/openid-connect/token",
        data={"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret},
        timeout=5,
    )
    reason = answer.json()["error_description"]
    assert reason in (REJECTED, NO_SERVICE_ACCOUNT)
    return reason == NO_SERVICE_ACCOUNT


def test_sso_on_creates_the_realm_and_one_confidential_pkce_client(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    space = sso_on(identity, org, server_id)

    assert space.realm == "herd-acme"
    assert space.issuer == "https://sso.provider.test/realms/herd-acme"
    realm = keycloak.realm("herd-acme")
    assert realm.rep["enabled"] is True
    assert realm.rep["displayName"] == "Acme Corporation"
    assert realm.rep["registrationAllowed"] is False
    assert realm.rep["attributes"]["herd.organisation-id"] == str(org.id)

    assert len(realm.clients) == 1
    client = realm.client(f"mastodon-{server_id}")
    assert client is not None
    assert client["redirectUris"] == [CALLBACK]
    assert client["protocol"] == "openid-connect"
    assert client["publicClient"] is False
    assert client["clientAuthenticatorType"] == "client-secret"
    assert client["standardFlowEnabled"] is True
    assert client["implicitFlowEnabled"] is False
    assert client["directAccessGrantsEnabled"] is False
    assert client["serviceAccountsEnabled"] is False
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["attributes"]["herd.server-id"] == str(server_id)

    secret = identity.client_secret(space, server_id)
    assert secret == realm.secret_of(f"mastodon-{server_id}")
    assert authenticates(keycloak, "herd-acme", f"mastodon-{server_id}", secret)


def test_sso_on_twice_creates_and_changes_nothing_the_second_time(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    sso_on(identity, org, server_id)
    first = keycloak.realm("herd-acme").client(f"mastodon-{server_id}")
    writes = len(keycloak.writes())

    space = sso_on(identity, org, server_id)
    again = identity.ensure_server_client(space, server_id=server_id, domain=DOMAIN)

    assert keycloak.writes()[writes:] == []
    assert list(keycloak.realms) == ["master", "herd-acme"]
    assert len(keycloak.realm("herd-acme").clients) == 1
    assert first is not None
    assert again.internal_id == first["id"]


def test_each_server_of_an_organisation_gets_its_own_client_in_its_realm(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    one, two = uuid.uuid4(), uuid.uuid4()
    space = sso_on(identity, org, one)
    other = identity.ensure_server_client(space, server_id=two, domain="chat.acme.example")

    realm = keycloak.realm("herd-acme")
    assert sorted(c["clientId"] for c in realm.clients.values()) == sorted(
        [f"mastodon-{one}", f"mastodon-{two}"]
    )
    assert other.redirect_uri == "https://chat.acme.example/auth/auth/openid_connect/callback"
    assert identity.client_secret(space, one) != identity.client_secret(space, two)


def test_a_client_someone_edited_is_put_back_with_one_update(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    space = sso_on(identity, org, server_id)
    client = keycloak.realm("herd-acme").client(f"mastodon-{server_id}")
    assert client is not None
    client["redirectUris"] = ["*"]
    client["directAccessGrantsEnabled"] = True
    client["attributes"]["pkce.code.challenge.method"] = ""
    client["attributes"]["operator.note"] = "kept"
    writes = len(keycloak.writes())

    identity.ensure_server_client(space, server_id=server_id, domain=DOMAIN)

    assert keycloak.writes()[writes:] == [
        ("PUT", f"/admin/realms/herd-acme/clients/{client['id']}")
    ]
    assert client["redirectUris"] == [CALLBACK]
    assert client["directAccessGrantsEnabled"] is False
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["attributes"]["operator.note"] == "kept"


def test_a_crash_after_creating_the_client_converges_without_a_second_client(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    space = sso_on(identity, org, server_id)
    created = identity.ensure_server_client(space, server_id=server_id, domain=DOMAIN)
    # The worker dies here: the secret was never read, let alone stored.
    del created

    # The next run (any worker, a fresh process) picks the job up again.
    rerun = KeycloakIdentity(keycloak.settings())
    client = rerun.ensure_server_client(space, server_id=server_id, domain=DOMAIN)
    secret = rerun.client_secret(space, server_id)

    realm = keycloak.realm("herd-acme")
    assert len(realm.clients) == 1
    assert client.internal_id == next(iter(realm.clients))
    assert secret == realm.secret_of(client.client_id)
    assert [w for w in keycloak.writes() if w[1].endswith("/clients")] == [
        ("POST", "/admin/realms/herd-acme/clients")
    ]


def test_a_lost_answer_to_the_create_is_retried_into_a_409_and_converges(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    space = identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))
    # Keycloak creates the client, and the connection drops before the 201.
    keycloak.lose_next_answer("POST", r"/admin/realms/herd-acme/clients")

    client = identity.ensure_server_client(space, server_id=server_id, domain=DOMAIN)

    # python-keycloak resent the POST; Keycloak said 409; Herd found the client.
    posts = [w for w in keycloak.writes() if w == ("POST", "/admin/realms/herd-acme/clients")]
    assert len(posts) == 2
    realm = keycloak.realm("herd-acme")
    assert len(realm.clients) == 1
    assert client.internal_id == next(iter(realm.clients))


def test_a_409_from_a_concurrent_run_means_find_the_client_and_update_it(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    space = identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))
    realm = keycloak.realm("herd-acme")

    def other_worker_gets_there_first(method: str, path: str) -> None:
        if (method, path) == ("POST", "/admin/realms/herd-acme/clients") and not realm.clients:
            keycloak.add_client(
                realm,
                {
                    "clientId": f"mastodon-{server_id}",
                    "redirectUris": [],
                    "attributes": {"herd.server-id": str(server_id)},
                },
            )

    keycloak.hooks.append(other_worker_gets_there_first)
    client = identity.ensure_server_client(space, server_id=server_id, domain=DOMAIN)

    assert len(realm.clients) == 1
    stored = realm.clients[client.internal_id]
    assert stored["redirectUris"] == [CALLBACK]
    assert stored["attributes"]["pkce.code.challenge.method"] == "S256"


def test_rotation_gives_a_new_secret_and_the_old_one_stops_working(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    space = sso_on(identity, org, server_id)
    client_id = f"mastodon-{server_id}"
    old = identity.client_secret(space, server_id)

    rotation = identity.rotate_client_secret(space, server_id)

    assert rotation.secret != old
    assert rotation.previous_valid_until is None  # no rotation policy: gone at once
    assert "secret" not in repr(rotation)
    assert identity.client_secret(space, server_id) == rotation.secret
    assert not authenticates(keycloak, "herd-acme", client_id, old)
    assert authenticates(keycloak, "herd-acme", client_id, rotation.secret)
    identity.retire_previous_secret(space, server_id)  # nothing to retire; fine
    assert len(keycloak.realm("herd-acme").clients) == 1


def test_sso_off_deletes_the_client_and_twice_is_fine(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    keep, drop = uuid.uuid4(), uuid.uuid4()
    space = sso_on(identity, org, keep)
    identity.ensure_server_client(space, server_id=drop, domain="old.acme.example")

    assert identity.delete_server_client(space, drop) is True
    assert identity.delete_server_client(space, drop) is False

    realm = keycloak.realm("herd-acme")
    assert [c["clientId"] for c in realm.clients.values()] == [f"mastodon-{keep}"]
    with pytest.raises(IdentityError) as missing:
        identity.client_secret(space, drop)
    assert missing.value.keycloak_status == 404


def test_sso_off_when_the_realm_is_already_gone_is_done(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    space = sso_on(identity, org, server_id)
    del keycloak.realms["herd-acme"]

    assert identity.delete_server_client(space, server_id) is False


def test_a_client_of_the_same_name_that_herd_did_not_make_is_left_alone(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    space = identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))
    realm = keycloak.realm("herd-acme")
    keycloak.add_client(realm, {"clientId": f"mastodon-{server_id}", "redirectUris": ["*"]})

    with pytest.raises(IdentityError, match="not made by Herd"):
        identity.ensure_server_client(space, server_id=server_id, domain=DOMAIN)
    with pytest.raises(IdentityError, match="not made by Herd"):
        identity.delete_server_client(space, server_id)
    assert len(realm.clients) == 1


def test_a_realm_of_the_same_name_that_herd_did_not_make_is_refused(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    keycloak.add_realm({"realm": "herd-acme", "enabled": True})

    with pytest.raises(IdentityError, match="not made by Herd"):
        identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))
    other = Org(uuid.uuid4(), "globex", "Globex")
    keycloak.add_realm(
        {"realm": "herd-globex", "attributes": {"herd.organisation-id": str(uuid.uuid4())}}
    )
    with pytest.raises(IdentityError, match="not made by Herd"):
        identity.delete_space(identity.space_for(other.id, other.slug))
    assert "herd-globex" in keycloak.realms


def test_branding_sets_display_name_and_login_theme_and_converges(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org, space: IdentitySpace
) -> None:
    realm = keycloak.realm("herd-acme")
    assert realm.rep["loginTheme"] == ""

    identity.apply_branding(space, Branding("Acme Staff Login", login_theme="acme"))
    assert realm.rep["displayName"] == "Acme Staff Login"
    assert realm.rep["loginTheme"] == "acme"
    writes = len(keycloak.writes())
    identity.apply_branding(space, Branding("Acme Staff Login", login_theme="acme"))
    assert keycloak.writes()[writes:] == []

    # Back to the provider's theme when the organisation drops its own.
    themed = KeycloakIdentity(keycloak.settings(login_theme="provider"))
    themed.apply_branding(space, Branding("Acme Staff Login"))
    assert realm.rep["loginTheme"] == "provider"


def test_a_new_realm_starts_with_the_providers_login_theme(
    keycloak: KeycloakStandIn, org: Org
) -> None:
    identity = KeycloakIdentity(keycloak.settings(login_theme="provider"))
    identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding(org.name))
    assert keycloak.realm("herd-acme").rep["loginTheme"] == "provider"


def test_deleting_the_space_removes_the_realm_and_twice_is_fine(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, space: IdentitySpace
) -> None:
    assert identity.delete_space(space) is True
    assert identity.delete_space(space) is False
    assert "herd-acme" not in keycloak.realms


def test_an_organisation_slug_must_be_a_slug(identity: KeycloakIdentity) -> None:
    with pytest.raises(ValueError, match="slug"):
        identity.space_for(uuid.uuid4(), "../master")


def test_a_server_domain_must_be_a_bare_ascii_host(
    identity: KeycloakIdentity, space: IdentitySpace
) -> None:
    for bad in ("https://social.acme.example", "social.acme.example/", "bücher.example", ""):
        with pytest.raises(ValueError, match=r"host name|IDNA"):
            identity.ensure_server_client(space, server_id=uuid.uuid4(), domain=bad)


def test_an_outage_in_the_middle_is_unavailable_and_the_next_run_converges(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    server_id = uuid.uuid4()
    space = identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))
    keycloak.outage = 503
    with pytest.raises(IdentityUnavailable) as down:
        identity.ensure_server_client(space, server_id=server_id, domain=DOMAIN)
    assert down.value.keycloak_status == 503

    keycloak.outage = None
    identity.ensure_server_client(space, server_id=server_id, domain=DOMAIN)
    assert len(keycloak.realm("herd-acme").clients) == 1
