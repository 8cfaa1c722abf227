"""Names Herd gives things in Keycloak, and the JSON representations it sends.

Pure functions, no I/O: the admin API client sends what these build, and the
tests read them to know what Keycloak should hold. Field names are Keycloak's
RealmRepresentation, ClientRepresentation, IdentityProviderRepresentation and
IdentityProviderMapperRepresentation (admin REST API, Keycloak 26); Keycloak
refuses unknown fields, so nothing here is invented.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from controlplane.identity.specs import (
    Branding,
    ClaimNames,
    IdentitySpace,
    OidcUpstream,
    SamlUpstream,
    Upstream,
)

# Herd marks what it owns, so it never adopts a realm or client that an
# operator made by hand under the same name.
ORGANISATION_ATTRIBUTE = "herd.organisation-id"
SERVER_ATTRIBUTE = "herd.server-id"
MAPPER_PREFIX = "herd-"
SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
FIRST_BROKER_LOGIN = "first broker login"
PERSISTENT_NAME_ID = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"


def realm_name(prefix: str, slug: str) -> str:
    # The slug never changes after the organisation is created, and the realm
    # name is part of every issuer URL Herd has handed out. It also goes into
    # admin API paths unescaped, hence the check.
    if not SLUG.fullmatch(slug):
        raise ValueError(f"{slug!r} is not an organisation slug")
    return f"{prefix}{slug}"


def issuer(issuer_base: str, realm: str) -> str:
    return f"{issuer_base.rstrip('/')}/realms/{realm}"


def client_id_for(server_id: uuid.UUID) -> str:
    return f"mastodon-{server_id}"


def redirect_uri(domain: str) -> str:
    # Mastodon mounts OmniAuth under /auth, and OmniAuth's own callback path is
    # /auth/:provider/callback: hence the doubled segment.
    return f"https://{domain}/auth/auth/openid_connect/callback"


def check_domain(domain: str) -> str:
    """The domain as it goes into a URL: ASCII (IDNA) host name, no scheme,
    port or path. Herd stores server domains in this form already."""
    if not domain or domain != domain.strip().lower() or any(c in domain for c in "/:@ \t"):
        raise ValueError(f"{domain!r} is not a bare lower-case host name")
    if not domain.isascii():
        raise ValueError(f"{domain!r} must be in its IDNA (xn--) form")
    return domain


def realm_representation(
    realm: str, organisation_id: uuid.UUID, branding: Branding, default_theme: str | None
) -> dict[str, Any]:
    """The realm as created. Later runs PUT only `branding_fields`."""
    return {
        "realm": realm,
        "enabled": True,
        # People arrive through the organisation's IdP (or are added by its
        # admins), never by signing themselves up.
        "registrationAllowed": False,
        "loginWithEmailAllowed": True,
        "duplicateEmailsAllowed": False,
        "sslRequired": "external",
        "bruteForceProtected": True,
        "attributes": {ORGANISATION_ATTRIBUTE: str(organisation_id)},
        **branding_fields(branding, default_theme),
    }


def branding_fields(branding: Branding, default_theme: str | None) -> dict[str, Any]:
    theme = branding.login_theme or default_theme
    # An empty loginTheme is how Keycloak says "the server's default theme".
    return {"displayName": branding.display_name, "loginTheme": theme or ""}


def client_representation(server_id: uuid.UUID, domain: str) -> dict[str, Any]:
    """One confidential client per Mastodon server: authorization code flow
    with PKCE (S256) only, exactly one redirect URI."""
    base = f"https://{domain}"
    return {
        "clientId": client_id_for(server_id),
        "name": f"Mastodon {domain}",
        "description": f"Managed by Herd for server {server_id}; edits here are overwritten.",
        "protocol": "openid-connect",
        "enabled": True,
        "publicClient": False,
        "bearerOnly": False,
        "clientAuthenticatorType": "client-secret",
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "consentRequired": False,
        # Mastodon reads the user from the ID token and userinfo; it needs no
        # realm or client roles, so tokens carry none.
        "fullScopeAllowed": False,
        "rootUrl": base,
        "baseUrl": base + "/",
        "redirectUris": [redirect_uri(domain)],
        "webOrigins": [],
        "attributes": {
            "pkce.code.challenge.method": "S256",
            "oauth2.device.authorization.grant.enabled": "false",
            "oidc.ciba.grant.enabled": "false",
            SERVER_ATTRIBUTE: str(server_id),
        },
    }


def client_drift(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The fields of `desired` that `current` does not match, for a PUT.

    Keycloak's client PUT updates the fields it is given and merges
    `attributes` key by key, so sending only what drifted is enough, and an
    unchanged client costs no write at all.
    """
    drift = {
        key: value
        for key, value in desired.items()
        if key != "attributes" and current.get(key) != value
    }
    attributes = current.get("attributes") or {}
    changed = {k: v for k, v in desired["attributes"].items() if attributes.get(k) != v}
    if changed:
        drift["attributes"] = changed
    return drift


def broker_endpoint(space: IdentitySpace, alias: str) -> str:
    return f"{space.issuer}/broker/{alias}/endpoint"


def identity_provider_representation(
    space: IdentitySpace, upstream: Upstream, imported: dict[str, str]
) -> dict[str, Any]:
    """The whole identity provider: Keycloak's PUT replaces it outright, so
    create and update send the same document. `imported` is what Keycloak
    read from the discovery document or SAML metadata."""
    config: dict[str, str] = dict(imported)
    if isinstance(upstream, OidcUpstream):
        provider_id = "oidc"
        config.update(
            clientId=upstream.client_id,
            clientSecret=upstream.client_secret,
            clientAuthMethod="client_secret_post",
            defaultScope=" ".join(upstream.scopes),
            pkceEnabled="true",
            pkceMethod="S256",
            validateSignature="true",
            useJwksUrl="true",
        )
    else:
        provider_id = "saml"
        config.update(_saml_config(space, upstream))
    # FORCE: each sign-in refreshes the user's name and address from the
    # organisation's IdP, which stays the authority on them.
    config["syncMode"] = "FORCE"
    return {
        "alias": upstream.alias,
        "displayName": upstream.display_name,
        "providerId": provider_id,
        "enabled": True,
        "trustEmail": upstream.trust_email,
        # Named explicitly: recent Keycloak reads an absent alias as "no
        # first-login flow", older ones as this built-in flow (which every
        # realm has). Flags left out (storeToken, linkOnly, ...) are false.
        "firstBrokerLoginFlowAlias": FIRST_BROKER_LOGIN,
        "config": config,
    }


def _saml_config(space: IdentitySpace, upstream: SamlUpstream) -> dict[str, str]:
    config = {
        # Keycloak's entity id as a service provider: the realm's URL, which
        # is also what its SP metadata announces.
        "entityId": space.issuer,
        "principalType": "SUBJECT",
    }
    if upstream.name_id_format:
        config["nameIDPolicyFormat"] = upstream.name_id_format
    if upstream.entity_id:
        config["idpEntityId"] = upstream.entity_id
    if upstream.single_sign_on_url:
        config["singleSignOnServiceUrl"] = upstream.single_sign_on_url
    if upstream.metadata_url is None:
        # Without metadata nothing says which bindings the IdP speaks;
        # HTTP-POST both ways is what SAML IdPs universally accept.
        config["postBindingResponse"] = "true"
        config["postBindingAuthnRequest"] = "true"
        config.setdefault("nameIDPolicyFormat", PERSISTENT_NAME_ID)
    if upstream.signing_certificate:
        config["signingCertificate"] = upstream.signing_certificate
        config["validateSignature"] = "true"
    return config


def mapper_representations(upstream: Upstream) -> list[dict[str, Any]]:
    """The attribute mappers Herd keeps on an identity provider: email,
    username, and the name as Keycloak's firstName and lastName."""
    claims: ClaimNames = upstream.claims
    if isinstance(upstream, OidcUpstream):
        username = ("oidc-username-idp-mapper", {"template": f"${{CLAIM.{claims.username}}}"})
        attribute_type, source_key = "oidc-user-attribute-idp-mapper", "claim"
    else:
        username = ("saml-username-idp-mapper", {"template": f"${{ATTRIBUTE.{claims.username}}}"})
        attribute_type, source_key = "saml-user-attribute-idp-mapper", "attribute.name"
    wanted = [
        ("username", username[0], {**username[1], "target": "LOCAL"}),
        *(
            (name, attribute_type, {source_key: source, "user.attribute": target})
            for name, source, target in (
                ("email", claims.email, "email"),
                ("first-name", claims.given_name, "firstName"),
                ("last-name", claims.family_name, "lastName"),
            )
        ),
    ]
    return [
        {
            "name": MAPPER_PREFIX + name,
            "identityProviderAlias": upstream.alias,
            "identityProviderMapper": mapper_type,
            "config": {**config, "syncMode": "INHERIT"},
        }
        for name, mapper_type, config in wanted
    ]
