"""Signing in through OIDC (authorization code with PKCE) against
oidc-provider-mock, a real provider, matched to Herd's users by verified
e-mail."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient

from controlplane.settings import get_settings
from tests.factories import World
from tests.web.oidc_mock import oidc_provider
from web import oidc

USERS = [
    {"sub": "owner-a", "email": "owner@org-a.example-herd.org", "email_verified": True},
    {"sub": "ops", "email": "ops@provider.example-herd.org", "email_verified": True},
    {"sub": "unverified", "email": "admin@org-a.example-herd.org", "email_verified": False},
    {"sub": "stranger", "email": "nobody@elsewhere.example-herd.org", "email_verified": True},
]


@pytest.fixture(scope="module")
def issuer() -> Iterator[str]:
    with oidc_provider(USERS) as url:
        yield url


@pytest.fixture
def sso(web_env: Path, issuer: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from controlplane.app import create_app

    monkeypatch.setenv("HERD_OIDC_ISSUER", issuer)
    monkeypatch.setenv("HERD_OIDC_CLIENT_ID", "herd-portal")
    monkeypatch.setenv("HERD_OIDC_CLIENT_SECRET", "a-client-secret-for-tests")
    monkeypatch.setenv("HERD_PUBLIC_URL", "http://testserver")
    get_settings.cache_clear()
    oidc._discover.cache_clear()
    with TestClient(create_app()) as client:
        yield client


def _sign_in_as(client: TestClient, sub: str) -> httpx.Response:
    start = client.get("/sign-in/oidc?next=/tokens", follow_redirects=False)
    assert start.status_code == 303
    authorize = start.headers["location"]
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == ["http://testserver/sign-in/oidc/callback"]
    # The person picks who they are on the provider's own page.
    consent = httpx.post(authorize, data={"sub": sub}, follow_redirects=False)
    assert consent.status_code == 302
    callback = urlsplit(consent.headers["location"])
    return client.get(f"{callback.path}?{callback.query}", follow_redirects=False)


def test_an_organisation_owner_signs_in_through_the_provider(sso: TestClient, world: World) -> None:
    answer = _sign_in_as(sso, "owner-a")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/tokens"
    home = sso.get("/", follow_redirects=False)
    assert home.headers["location"] == f"/o/{world.ids['org']}/servers"
    page = sso.get(home.headers["location"])
    assert "owner@org-a.example-herd.org" in page.text
    # A person who signed in this way holds no staff power.
    assert sso.get("/staff/fleet").status_code == 403


def test_a_staff_member_signed_in_through_the_provider_reaches_the_console(
    sso: TestClient, world: World
) -> None:
    assert _sign_in_as(sso, "ops").status_code == 303
    fleet = sso.get("/staff/fleet")
    assert fleet.status_code == 200
    assert "live.org-a-herd.social" in fleet.text


def test_the_sign_in_page_offers_only_the_provider(sso: TestClient, world: World) -> None:
    page = sso.get("/sign-in")
    assert "Sign in with single sign-on" in page.text
    assert 'name="token"' not in page.text


@pytest.mark.parametrize(
    ("sub", "message"),
    [
        ("unverified", "not verified"),
        ("stranger", "There is no Herd account for nobody@elsewhere.example-herd.org"),
    ],
)
def test_refused_sign_ins(sso: TestClient, world: World, sub: str, message: str) -> None:
    answer = _sign_in_as(sso, sub)
    assert answer.status_code in (401, 403)
    assert message in answer.text
    assert sso.get("/tokens", follow_redirects=False).status_code == 303


def test_a_callback_not_started_here_is_refused(sso: TestClient, world: World) -> None:
    answer = sso.get("/sign-in/oidc/callback?code=stolen&state=guess")
    assert answer.status_code == 401
    assert sso.get("/tokens", follow_redirects=False).status_code == 303
