"""Single sign-on through Keycloak: one realm per organisation, one OIDC client
per Mastodon server, the organisation's own IdP brokered in. See README.md."""

from controlplane.identity.errors import IdentityError, IdentityUnavailable
from controlplane.identity.keycloak import KeycloakIdentity, get_identity
from controlplane.identity.mastodon import mastodon_oidc_env
from controlplane.identity.settings import IdentitySettings
from controlplane.identity.specs import (
    Branding,
    BrokerEndpoints,
    ClaimNames,
    IdentitySpace,
    OidcUpstream,
    SamlUpstream,
    SecretRotation,
    ServerClient,
    Upstream,
)

__all__ = [
    "Branding",
    "BrokerEndpoints",
    "ClaimNames",
    "IdentityError",
    "IdentitySettings",
    "IdentitySpace",
    "IdentityUnavailable",
    "KeycloakIdentity",
    "OidcUpstream",
    "SamlUpstream",
    "SecretRotation",
    "ServerClient",
    "Upstream",
    "get_identity",
    "mastodon_oidc_env",
]
