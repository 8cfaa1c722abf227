"""Sign-in through the provider's OIDC identity provider: authorization code
with PKCE (authlib), the ID token checked with the provider's keys (joserfc).

Herd does not create accounts from sign-ins: people get a Herd account
through an invitation (or staff creating it), and the identity provider only
proves who they are, by a verified e-mail address.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import httpx
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from controlplane.settings import Settings, get_settings

CALLBACK_PATH = "/sign-in/oidc/callback"
SCOPE = "openid email profile"
_TIMEOUT = 10.0


class OidcError(Exception):
    """The sign-in cannot be completed; the message is safe to show."""


@dataclass(frozen=True)
class Provider:
    issuer: str
    client_id: str
    client_secret: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None


def configured(settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    return bool(settings.oidc_issuer and settings.oidc_client_id and settings.oidc_client_secret)


@lru_cache(maxsize=4)
def _discover(issuer: str) -> dict[str, Any]:
    url = issuer.rstrip("/") + "/.well-known/openid-configuration"
    try:
        answer = httpx.get(url, timeout=_TIMEOUT)
        answer.raise_for_status()
        document: dict[str, Any] = answer.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise OidcError("the identity provider cannot be reached; try again shortly") from exc
    if document.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        raise OidcError("the identity provider's discovery document names another issuer")
    return document


def provider() -> Provider:
    settings = get_settings()
    assert settings.oidc_issuer
    assert settings.oidc_client_id
    assert settings.oidc_client_secret
    doc = _discover(settings.oidc_issuer)
    return Provider(
        issuer=doc["issuer"],
        client_id=settings.oidc_client_id,
        client_secret=settings.oidc_client_secret,
        authorization_endpoint=doc["authorization_endpoint"],
        token_endpoint=doc["token_endpoint"],
        jwks_uri=doc["jwks_uri"],
        userinfo_endpoint=doc.get("userinfo_endpoint"),
    )


def redirect_uri() -> str:
    return get_settings().public_url.rstrip("/") + CALLBACK_PATH


def begin(idp: Provider) -> tuple[str, dict[str, str]]:
    """The authorization URL, and what the session must keep to finish."""
    pending = {
        "state": secrets.token_urlsafe(24),
        "nonce": secrets.token_urlsafe(24),
        "verifier": secrets.token_urlsafe(48),
    }
    with OAuth2Client(
        idp.client_id, idp.client_secret, scope=SCOPE, redirect_uri=redirect_uri()
    ) as client:
        url, _ = client.create_authorization_url(
            idp.authorization_endpoint,
            state=pending["state"],
            nonce=pending["nonce"],
            code_challenge=create_s256_code_challenge(pending["verifier"]),
            code_challenge_method="S256",
        )
    return url, pending


def finish(idp: Provider, pending: dict[str, str], state: str, code: str) -> tuple[str, str]:
    """Exchange the code and return (verified e-mail, display name)."""
    if not pending or not secrets.compare_digest(pending.get("state", ""), state):
        raise OidcError("this sign-in was not started here, or it has expired; start again")
    with OAuth2Client(
        idp.client_id,
        idp.client_secret,
        redirect_uri=redirect_uri(),
        token_endpoint_auth_method="client_secret_basic",  # noqa: S106 - a method name
        timeout=_TIMEOUT,
    ) as client:
        try:
            token = client.fetch_token(
                idp.token_endpoint, code=code, code_verifier=pending["verifier"]
            )
        except Exception as exc:
            raise OidcError("the identity provider refused the sign-in") from exc
        claims = _verified_claims(idp, token.get("id_token"), pending["nonce"])
        email, verified = claims.get("email"), claims.get("email_verified")
        if (email is None or verified is None) and idp.userinfo_endpoint:
            info = client.get(idp.userinfo_endpoint).json()
            if info.get("sub") == claims["sub"]:
                email = email or info.get("email")
                verified = info.get("email_verified") if verified is None else verified
    if not email:
        raise OidcError("the identity provider did not tell Herd your e-mail address")
    if verified is not True:
        raise OidcError("your e-mail address is not verified at the identity provider")
    return str(email), str(claims.get("name") or "")


def _verified_claims(idp: Provider, id_token: str | None, nonce: str) -> dict[str, Any]:
    if not id_token:
        raise OidcError("the identity provider sent no ID token")
    try:
        keys = KeySet.import_key_set(httpx.get(idp.jwks_uri, timeout=_TIMEOUT).json())
        decoded = jwt.decode(id_token, keys)
    except (httpx.HTTPError, ValueError, JoseError) as exc:
        raise OidcError("the ID token's signature does not check out") from exc
    claims = dict(decoded.claims)
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    now = time.time()
    if claims.get("iss") != idp.issuer:
        raise OidcError("the ID token comes from another issuer")
    if idp.client_id not in audiences:
        raise OidcError("the ID token is meant for another application")
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] < now - 60:
        raise OidcError("the ID token has expired")
    if not secrets.compare_digest(str(claims.get("nonce", "")), nonce):
        raise OidcError("the ID token does not belong to this sign-in")
    if not claims.get("sub"):
        raise OidcError("the ID token names no subject")
    return claims
