"""What Herd asks of Keycloak and what it gets back, as plain values.

These carry no ORM rows and no python-keycloak types, so the services and
pipeline steps that call this package decide where the values come from (and
where the secrets are stored, encrypted).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime

_ALIAS = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_SCOPE = re.compile(r"[\x21\x23-\x2b\x2d-\x5b\x5d-\x7e]+")  # RFC 6749 scope-token, no comma


@dataclass(frozen=True)
class IdentitySpace:
    """An organisation's place in Keycloak: its realm, and the issuer URL its
    Mastodon servers discover OIDC from."""

    organisation_id: uuid.UUID
    realm: str
    issuer: str


@dataclass(frozen=True)
class Branding:
    """What the organisation's sign-in page shows. `login_theme` names a theme
    installed in Keycloak; None falls back to HERD_KEYCLOAK_LOGIN_THEME, and
    with neither set Keycloak's default theme is used."""

    display_name: str
    login_theme: str | None = None


@dataclass(frozen=True)
class ServerClient:
    """The OIDC client of one Mastodon server."""

    server_id: uuid.UUID
    client_id: str  # what Mastodon sends as client_id
    internal_id: str  # Keycloak's own id, which its admin API addresses
    domain: str
    redirect_uri: str


@dataclass(frozen=True)
class SecretRotation:
    """A freshly generated client secret. `previous_valid_until` is when the
    replaced secret stops working: None means it already has (Keycloak keeps
    one secret per client unless a secret-rotation client policy applies)."""

    secret: str = field(repr=False)
    previous_valid_until: datetime | None


@dataclass(frozen=True)
class ClaimNames:
    """Which upstream claim (OIDC) or attribute (SAML) carries each user field."""

    email: str
    username: str
    given_name: str
    family_name: str

    @classmethod
    def oidc(cls) -> ClaimNames:
        return cls("email", "preferred_username", "given_name", "family_name")

    @classmethod
    def saml(cls) -> ClaimNames:
        # The LDAP/eduPerson attribute OIDs most SAML IdPs (ADFS, Entra ID,
        # Shibboleth) can release: mail, uid, givenName, sn.
        return cls(
            "urn:oid:0.9.2342.19200300.100.1.3",
            "urn:oid:0.9.2342.19200300.100.1.1",
            "urn:oid:2.5.4.42",
            "urn:oid:2.5.4.4",
        )


def _check_alias(alias: str) -> None:
    # The alias is part of the broker URL the organisation registers at its
    # IdP, and python-keycloak puts it in paths unescaped.
    if not _ALIAS.fullmatch(alias):
        raise ValueError(f"identity provider alias {alias!r}: use a-z, 0-9, '-' and '_'")


def _check_url(name: str, value: str | None) -> None:
    if value is not None and not re.match(r"^https?://[^/\s]+", value):
        raise ValueError(f"{name} must be an http(s) URL")


@dataclass(frozen=True)
class OidcUpstream:
    """The organisation's own OpenID Connect provider, brokered by Keycloak.

    Keycloak reads the endpoints from the discovery document (by default
    ISSUER/.well-known/openid-configuration), as its admin console does.
    """

    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    discovery_url: str | None = None
    scopes: tuple[str, ...] = ("openid", "profile", "email")
    display_name: str = ""
    alias: str = "idp"
    claims: ClaimNames = field(default_factory=ClaimNames.oidc)
    # The organisation's IdP is the authority on its people's addresses, so
    # Keycloak marks them verified instead of mailing a confirmation.
    trust_email: bool = True

    def __post_init__(self) -> None:
        _check_alias(self.alias)
        _check_url("issuer", self.issuer)
        _check_url("discovery_url", self.discovery_url)
        if "openid" not in self.scopes or not all(_SCOPE.fullmatch(s) for s in self.scopes):
            raise ValueError("scopes must include 'openid' and be plain scope tokens")

    @property
    def resolved_discovery_url(self) -> str:
        return self.discovery_url or self.issuer.rstrip("/") + "/.well-known/openid-configuration"


@dataclass(frozen=True)
class SamlUpstream:
    """The organisation's own SAML 2.0 IdP, brokered by Keycloak.

    Give `metadata_url` and Keycloak reads the entity id, endpoints and
    signing certificate from it; `entity_id`, if also given, must match. Without
    metadata, give `entity_id`, `single_sign_on_url` and `signing_certificate`.
    """

    metadata_url: str | None = None
    entity_id: str | None = None
    single_sign_on_url: str | None = None
    signing_certificate: str | None = None
    display_name: str = ""
    alias: str = "idp"
    claims: ClaimNames = field(default_factory=ClaimNames.saml)
    # None: the first format the metadata lists, else persistent.
    name_id_format: str | None = None
    trust_email: bool = True

    def __post_init__(self) -> None:
        _check_alias(self.alias)
        _check_url("metadata_url", self.metadata_url)
        _check_url("single_sign_on_url", self.single_sign_on_url)
        if self.metadata_url is None and not (
            self.entity_id and self.single_sign_on_url and self.signing_certificate
        ):
            raise ValueError(
                "give metadata_url, or entity_id with single_sign_on_url and signing_certificate"
            )


Upstream = OidcUpstream | SamlUpstream


@dataclass(frozen=True)
class BrokerEndpoints:
    """What the organisation registers at its own IdP for Keycloak."""

    alias: str
    # OIDC: the redirect URI. SAML: the assertion consumer service URL.
    redirect_uri: str
    # SAML only: Keycloak's entity id as a service provider, and its metadata.
    saml_entity_id: str | None = None
    saml_metadata_url: str | None = None
