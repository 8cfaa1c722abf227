from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, StringConstraints

from controlplane.schemas import Input, Output

HttpUrl = Annotated[str, StringConstraints(pattern=r"^https?://[^/\s]+\S*$", max_length=500)]
Alias = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")]
ScopeToken = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/-]{1,100}$")]
DisplayName = Annotated[str, StringConstraints(max_length=100, pattern=r"^[^\r\n]*$")]


class OidcUpstreamIn(Input):
    """The organisation's own OpenID Connect provider."""

    kind: Literal["oidc"]
    issuer: HttpUrl
    client_id: Annotated[str, StringConstraints(min_length=1, max_length=255)]
    # Write-only. Leave it out to keep the one stored; it is never shown back.
    client_secret: SecretStr | None = Field(default=None, max_length=1000)
    discovery_url: HttpUrl | None = None
    scopes: list[ScopeToken] = Field(default=["openid", "profile", "email"], max_length=20)
    display_name: DisplayName = ""
    alias: Alias = "idp"


class SamlUpstreamIn(Input):
    """The organisation's own SAML 2.0 identity provider: its metadata URL, or
    its entity id, sign-in URL and signing certificate."""

    kind: Literal["saml"]
    metadata_url: HttpUrl | None = None
    entity_id: Annotated[str, StringConstraints(max_length=500)] | None = None
    single_sign_on_url: HttpUrl | None = None
    signing_certificate: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    display_name: DisplayName = ""
    alias: Alias = "idp"


class SsoUpdate(Input):
    """An organisation's single sign-on. `omniauth_only` turns off
    Mastodon's own passwords and sign-ups; `one_click_sso_login` skips
    Mastodon's sign-in page and needs `omniauth_only`."""

    enabled: bool
    display_name: DisplayName = ""
    login_theme: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._-]{1,100}$")] | None = None
    omniauth_only: bool = False
    one_click_sso_login: bool = False
    upstream: Annotated[OidcUpstreamIn | SamlUpstreamIn, Field(discriminator="kind")] | None = None

    def upstream_fields(self) -> dict[str, Any] | None:
        if self.upstream is None:
            return None
        return self.upstream.model_dump(exclude={"client_secret"})

    def upstream_secret(self) -> str | None:
        if isinstance(self.upstream, OidcUpstreamIn) and self.upstream.client_secret is not None:
            return self.upstream.client_secret.get_secret_value()
        return None


class ServerSsoOut(Output):
    server_id: uuid.UUID
    domain: str
    # active: the server has its client; pending: a job is bringing it to
    # the organisation's choice; off.
    state: Literal["active", "pending", "off"]
    client_id: str | None
    rotated_at: datetime | None


class SsoOut(Output):
    organisation_id: uuid.UUID
    enabled: bool
    display_name: str
    login_theme: str | None
    omniauth_only: bool
    one_click_sso_login: bool
    upstream: dict[str, Any] | None
    upstream_has_client_secret: bool
    realm: str | None
    issuer: str | None
    broker_redirect_uri: str | None
    saml_entity_id: str | None
    saml_metadata_url: str | None
    servers: list[ServerSsoOut]
    # The `sso` jobs this change started, one per running server.
    jobs: list[uuid.UUID]
