"""The OIDC variables of a Mastodon server's `.env.production`.

Mastodon reads them in config/omniauth.yml: OIDC_SCOPE is split on commas
(spaces would become part of a scope name), OIDC_DISCOVERY makes it fetch
ISSUER/.well-known/openid-configuration at boot (so Keycloak must answer
before the server starts), and ONE_CLICK_SSO_LOGIN only takes effect with
OMNIAUTH_ONLY and a single provider.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from controlplane.identity.specs import IdentitySpace, ServerClient

DEFAULT_SCOPES = ("openid", "profile", "email")
# `sub` is Keycloak's user id: it never changes, where a username can.
UID_FIELDS = ("sub", "preferred_username")
_SCOPE = re.compile(r"[A-Za-z0-9_.:/-]+")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def mastodon_oidc_env(
    space: IdentitySpace,
    client: ServerClient,
    client_secret: str,
    *,
    display_name: str,
    scopes: Sequence[str] = DEFAULT_SCOPES,
    uid_field: str = "sub",
    use_pkce: bool = True,
    omniauth_only: bool = False,
    one_click_sso_login: bool = False,
) -> dict[str, str]:
    """Every OIDC variable Mastodon needs to sign people in through the
    organisation's realm, as strings ready for the env template.

    `display_name` is the sign-in button's label. OMNIAUTH_ONLY (no local
    passwords or sign-ups; sign-out goes through Keycloak) and
    ONE_CLICK_SSO_LOGIN appear only when switched on.
    """
    if "openid" not in scopes:
        raise ValueError("OIDC needs the 'openid' scope")
    bad = [s for s in scopes if not _SCOPE.fullmatch(s)]
    if bad:
        raise ValueError(f"scopes {bad!r} cannot go in a comma-separated OIDC_SCOPE")
    if uid_field not in UID_FIELDS:
        raise ValueError(f"OIDC_UID_FIELD must be one of {UID_FIELDS}")
    if one_click_sso_login and not omniauth_only:
        raise ValueError("ONE_CLICK_SSO_LOGIN only works together with OMNIAUTH_ONLY")
    if not display_name.strip() or "\n" in display_name:
        raise ValueError("the display name must be one non-empty line")
    env = {
        "OIDC_ENABLED": "true",
        "OIDC_DISPLAY_NAME": display_name.strip(),
        "OIDC_ISSUER": space.issuer,
        "OIDC_DISCOVERY": "true",
        "OIDC_SCOPE": ",".join(dict.fromkeys(scopes)),
        "OIDC_UID_FIELD": uid_field,
        "OIDC_CLIENT_ID": client.client_id,
        "OIDC_CLIENT_SECRET": client_secret,
        "OIDC_REDIRECT_URI": client.redirect_uri,
        "OIDC_USE_PKCE": _flag(use_pkce),
    }
    if omniauth_only:
        env["OMNIAUTH_ONLY"] = "true"
    if one_click_sso_login:
        env["ONE_CLICK_SSO_LOGIN"] = "true"
    return env
