"""The OIDC variables a Mastodon server gets, for the env template."""

from __future__ import annotations

import uuid

import pytest

from controlplane.identity import IdentitySpace, ServerClient, mastodon_oidc_env
from controlplane.identity.representations import redirect_uri

SPACE = IdentitySpace(uuid.uuid4(), "herd-acme", "https://sso.provider.test/realms/herd-acme")
SERVER = uuid.UUID("0190f5d2-8c2b-7c1e-9a4b-3f6e2d1c0b9a")
CLIENT = ServerClient(
    SERVER,
    f"mastodon-{SERVER}",
    "internal-id",
    "social.acme.example",
    redirect_uri("social.acme.example"),
)


def test_the_variables_are_exactly_what_mastodon_reads() -> None:
    env = mastodon_oidc_env(SPACE, CLIENT, "s3cret", display_name="Acme Corporation")

    assert env == {
        "OIDC_ENABLED": "true",
        "OIDC_DISPLAY_NAME": "Acme Corporation",
        "OIDC_ISSUER": "https://sso.provider.test/realms/herd-acme",
        "OIDC_DISCOVERY": "true",
        "OIDC_SCOPE": "openid,profile,email",
        "OIDC_UID_FIELD": "sub",
        "OIDC_CLIENT_ID": "mastodon-0190f5d2-8c2b-7c1e-9a4b-3f6e2d1c0b9a",
        "OIDC_CLIENT_SECRET": "s3cret",
        "OIDC_REDIRECT_URI": "https://social.acme.example/auth/auth/openid_connect/callback",
        "OIDC_USE_PKCE": "true",
    }


def test_omniauth_only_and_one_click_login_appear_when_switched_on() -> None:
    env = mastodon_oidc_env(
        SPACE,
        CLIENT,
        "s3cret",
        display_name="Acme",
        scopes=("openid", "email", "profile", "email"),
        uid_field="preferred_username",
        omniauth_only=True,
        one_click_sso_login=True,
    )
    assert env["OMNIAUTH_ONLY"] == "true"
    assert env["ONE_CLICK_SSO_LOGIN"] == "true"
    assert env["OIDC_SCOPE"] == "openid,email,profile"  # no doubles, order kept
    assert env["OIDC_UID_FIELD"] == "preferred_username"

    only = mastodon_oidc_env(SPACE, CLIENT, "s", display_name="Acme", omniauth_only=True)
    assert only["OMNIAUTH_ONLY"] == "true"
    assert "ONE_CLICK_SSO_LOGIN" not in only


@pytest.mark.parametrize(
    ("options", "complaint"),
    [
        ({"one_click_sso_login": True}, "OMNIAUTH_ONLY"),
        ({"scopes": ("profile", "email")}, "openid"),
        ({"scopes": ("openid", "profile email")}, "comma-separated"),
        ({"scopes": ("openid", "a,b")}, "comma-separated"),
        ({"uid_field": "email"}, "OIDC_UID_FIELD"),
        ({"display_name": " "}, "display name"),
        ({"display_name": "Acme\nOIDC_ENABLED=false"}, "display name"),
    ],
)
def test_settings_mastodon_would_misread_are_refused(
    options: dict[str, object], complaint: str
) -> None:
    arguments: dict[str, object] = {"display_name": "Acme", **options}
    with pytest.raises(ValueError, match=complaint):
        mastodon_oidc_env(SPACE, CLIENT, "s3cret", **arguments)  # type: ignore[arg-type]
