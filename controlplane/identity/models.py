"""What Herd records of single sign-on: each organisation's choice (on or
off, sign-in options, its own identity provider) and, per server, the OIDC
client Herd made for it in Keycloak with that client's secret encrypted.

Keycloak holds the truth about realms and clients; these rows hold what Herd
wants (desired state) and the one thing Keycloak will not give back later
without an admin call on every render: the client secret the server runs
with.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlmodel import Field, SQLModel

from controlplane.sqltypes import UTCDateTime, utcnow


class OrganisationSso(SQLModel, table=True):
    __tablename__ = "organisation_sso"

    organisation_id: uuid.UUID = Field(
        foreign_key="organisations.id", primary_key=True, ondelete="CASCADE"
    )
    enabled: bool = False
    # The sign-in button's label on the organisation's Mastodon servers.
    display_name: str = Field(default="", sa_type=String(100))
    # A theme installed in Keycloak; None: HERD_KEYCLOAK_LOGIN_THEME or Keycloak's.
    login_theme: str | None = Field(default=None, sa_type=String(100))
    omniauth_only: bool = False
    one_click_sso_login: bool = False
    # The organisation's own IdP, without its secret: {"kind": "oidc", ...}
    # or {"kind": "saml", ...}; None when people have accounts in the realm.
    upstream: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    upstream_secret_encrypted: str | None = Field(default=None, sa_type=Text, repr=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ServerSso(SQLModel, table=True):
    """A server's OIDC client in its organisation's realm. The row exists
    from the moment Herd has read the client's secret until the client is
    deleted; a client that exists in Keycloak without a row (a worker killed
    in between) is found by its derived clientId on the next run."""

    __tablename__ = "server_sso"

    server_id: uuid.UUID = Field(foreign_key="servers.id", primary_key=True, ondelete="CASCADE")
    realm: str = Field(sa_type=String(100))
    client_id: str = Field(sa_type=String(100))
    redirect_uri: str = Field(sa_type=String(300))
    issuer: str = Field(sa_type=String(300))
    secret_encrypted: str = Field(sa_type=Text, repr=False)
    rotated_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
