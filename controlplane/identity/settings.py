"""Keycloak settings, from `HERD_KEYCLOAK_*` environment variables.

Herd signs in to Keycloak's admin API as one account. In production that is a
confidential client with a service account (client-credentials grant) holding
`create-realm` and the realm-management roles Herd needs; an admin username
and password work too, for a first setup or a development Keycloak.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from controlplane.settings import PLACEHOLDER_SECRETS


class IdentitySettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="HERD_KEYCLOAK_", extra="ignore", populate_by_name=True
    )

    # Where Herd reaches the admin API, e.g. http://keycloak.internal:8080 (no
    # /auth suffix on Keycloak 17+). Unset: SSO cannot be switched on.
    url: str | None = None
    # Where browsers and Mastodon servers reach Keycloak; the realms' issuer
    # URLs are built from it. Defaults to `url`, which suits a Keycloak that
    # has one public name.
    public_url: str | None = None
    admin_realm: str = "master"
    admin_client_id: str = "admin-cli"
    admin_client_secret: str | None = Field(default=None, repr=False)
    admin_username: str | None = None
    admin_password: str | None = Field(default=None, repr=False)
    # Each organisation's realm is PREFIX + its slug. The prefix keeps Herd's
    # realms apart from the provider's own (and a slug "master" harmless).
    realm_prefix: str = "herd-"
    # A login theme installed in Keycloak for every organisation's realm, used
    # when the organisation has not chosen one of its own.
    login_theme: str | None = None
    timeout_seconds: int = 10
    verify_tls: bool = True
    ca_bundle: Path | None = None
    # Shared with the rest of Herd: production refuses placeholder secrets.
    environment: Literal["development", "production"] = Field(
        default="development", validation_alias="HERD_ENVIRONMENT"
    )

    @field_validator("url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError("must be an http:// or https:// URL")
        # python-keycloak joins paths onto the base URL, so a base with a
        # path (a reverse proxy's /sso) needs its trailing slash.
        return value.rstrip("/") + "/"

    @field_validator("realm_prefix")
    @classmethod
    def _realm_prefix(cls, value: str) -> str:
        # Realm names end up in URL paths unescaped (python-keycloak formats
        # them in), so they stay within what a slug may hold.
        if not re.fullmatch(r"[a-z0-9-]{0,30}", value):
            raise ValueError("use lower-case letters, digits and hyphens (at most 30)")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> IdentitySettings:
        if self.environment == "production":
            for name in ("admin_client_secret", "admin_password"):
                value = getattr(self, name)
                if value is not None and value.strip().lower() in PLACEHOLDER_SECRETS:
                    raise ValueError(f"HERD_KEYCLOAK_{name.upper()} is a placeholder")
        return self

    @property
    def configured(self) -> bool:
        return self.url is not None and (
            self.admin_client_secret is not None
            or (self.admin_username is not None and self.admin_password is not None)
        )

    @property
    def issuer_base(self) -> str:
        base = self.public_url or self.url
        if base is None:
            raise ValueError("HERD_KEYCLOAK_URL is not set")
        return base

    @property
    def verify(self) -> bool | str:
        if not self.verify_tls:
            return False
        return str(self.ca_bundle) if self.ca_bundle else True
