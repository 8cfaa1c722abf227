"""Keycloak down, refusing Herd, or expiring its token; settings; sharing
one client between threads."""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from controlplane.identity import (
    Branding,
    IdentityError,
    IdentitySettings,
    IdentityUnavailable,
    KeycloakIdentity,
    get_identity,
)
from controlplane.problems import HerdError
from tests.identity.conftest import Org
from tests.identity.standin import ADMIN_PASSWORD, ADMIN_USER, KeycloakStandIn


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_keycloak_is_unavailable(org: Org) -> None:
    settings = IdentitySettings(
        url=f"http://127.0.0.1:{closed_port()}",
        admin_client_id="herd-admin",
        admin_client_secret="never-sent-anywhere",
        timeout_seconds=2,
    )
    identity = KeycloakIdentity(settings)  # nothing is fetched before the first call

    with pytest.raises(IdentityUnavailable) as down:
        identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))

    assert "did not answer" in str(down.value)
    assert "never-sent-anywhere" not in str(down.value)
    assert isinstance(down.value, IdentityError)
    assert (down.value.status, down.value.kind) == (503, "identity-unavailable")


def test_an_outage_at_the_token_endpoint_is_unavailable(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    keycloak.outage = 502
    with pytest.raises(IdentityUnavailable) as down:
        identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))
    assert down.value.keycloak_status == 502


def test_refused_credentials_are_an_error_not_an_outage(
    keycloak: KeycloakStandIn, org: Org
) -> None:
    identity = KeycloakIdentity(keycloak.settings(admin_client_secret="wrong-secret"))

    with pytest.raises(IdentityError) as refused:
        identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))

    assert not isinstance(refused.value, IdentityUnavailable)
    assert refused.value.keycloak_status == 401
    assert "HERD_KEYCLOAK_ADMIN" in str(refused.value)
    assert isinstance(refused.value, HerdError)
    assert refused.value.status == 502


def test_an_admin_password_works_and_an_expired_token_is_renewed(
    keycloak: KeycloakStandIn, org: Org
) -> None:
    settings = keycloak.settings(
        admin_client_id="admin-cli",
        admin_client_secret=None,
        admin_username=ADMIN_USER,
        admin_password=ADMIN_PASSWORD,
    )
    identity = KeycloakIdentity(settings)
    space = identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))

    keycloak.expire_tokens()  # the next admin call answers 401
    identity.ensure_server_client(space, server_id=uuid.uuid4(), domain="a.acme.example")

    tokens = [r for r in keycloak.requests if r[1].endswith("/token")]
    assert len(tokens) == 2  # the password grant, then a refresh
    assert len(keycloak.realm("herd-acme").clients) == 1


def test_a_service_account_token_is_fetched_again_when_it_expires(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn, org: Org
) -> None:
    space = identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))
    keycloak.expire_tokens()
    identity.ensure_server_client(space, server_id=uuid.uuid4(), domain="a.acme.example")
    assert len([r for r in keycloak.requests if r[1].endswith("/token")]) == 2


def test_admin_calls_without_a_token_are_refused_by_the_standin(
    keycloak: KeycloakStandIn,
) -> None:
    import requests

    answer = requests.get(f"{keycloak.url}/admin/realms/master", timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"error": "HTTP 401 Unauthorized"}


def test_one_client_serves_many_threads_and_realms(
    identity: KeycloakIdentity, keycloak: KeycloakStandIn
) -> None:
    orgs = [Org(uuid.uuid4(), f"org{n}", f"Org {n}") for n in range(3)]
    spaces = {
        o.slug: identity.ensure_space(organisation_id=o.id, slug=o.slug, branding=Branding(o.name))
        for o in orgs
    }
    jobs = [(o.slug, uuid.uuid4()) for o in orgs for _ in range(4)]

    def ensure(job: tuple[str, uuid.UUID]) -> str:
        slug, server_id = job
        client = identity.ensure_server_client(
            spaces[slug], server_id=server_id, domain=f"{server_id.hex[:8]}.{slug}.example"
        )
        return identity.client_secret(spaces[slug], client.server_id)

    with ThreadPoolExecutor(max_workers=6) as pool:
        secrets = list(pool.map(ensure, jobs))

    assert len(set(secrets)) == len(jobs)
    for slug, server_id in jobs:
        realm = keycloak.realm(f"herd-{slug}")
        assert realm.client(f"mastodon-{server_id}") is not None
        assert len(realm.clients) == 4


def test_an_unconfigured_keycloak_says_what_to_set() -> None:
    with pytest.raises(IdentityError, match="HERD_KEYCLOAK_URL"):
        KeycloakIdentity(IdentitySettings(url=None))
    with pytest.raises(IdentityError, match="ADMIN_CLIENT_SECRET"):
        KeycloakIdentity(IdentitySettings(url="http://127.0.0.1:9"))


def test_settings_normalise_urls_and_check_the_prefix() -> None:
    settings = IdentitySettings(url="http://127.0.0.1:8080/sso", admin_client_secret="x")
    assert settings.url == "http://127.0.0.1:8080/sso/"
    assert settings.issuer_base == "http://127.0.0.1:8080/sso/"
    assert settings.verify is True
    assert IdentitySettings(verify_tls=False).verify is False
    assert IdentitySettings(ca_bundle=Path("/etc/ca.pem")).verify == "/etc/ca.pem"
    with pytest.raises(ValidationError):
        IdentitySettings(url="keycloak.internal")
    with pytest.raises(ValidationError):
        IdentitySettings(realm_prefix="Herd_")


def test_production_refuses_placeholder_admin_secrets() -> None:
    with pytest.raises(ValidationError, match="placeholder"):
        IdentitySettings(environment="production", admin_password="changeme")
    IdentitySettings(environment="development", admin_password="changeme")


@pytest.fixture
def keycloak_env(monkeypatch: pytest.MonkeyPatch, keycloak: KeycloakStandIn) -> Iterator[None]:
    monkeypatch.setenv("HERD_KEYCLOAK_URL", keycloak.url)
    monkeypatch.setenv("HERD_KEYCLOAK_ADMIN_CLIENT_ID", "herd-admin")
    monkeypatch.setenv("HERD_KEYCLOAK_ADMIN_CLIENT_SECRET", "service-secret-for-tests")
    monkeypatch.setenv("HERD_KEYCLOAK_REALM_PREFIX", "tenant-")
    get_identity.cache_clear()
    yield
    get_identity.cache_clear()


@pytest.mark.usefixtures("keycloak_env")
def test_the_process_shares_one_client_configured_from_the_environment(
    keycloak: KeycloakStandIn, org: Org
) -> None:
    identity = get_identity()
    assert get_identity() is identity
    space = identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding("A"))
    assert space.realm == "tenant-acme"
    assert space.issuer == f"{keycloak.url}/realms/tenant-acme"
    assert "tenant-acme" in keycloak.realms
