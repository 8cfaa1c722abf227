from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.servers.lifecycle import ServerState
from controlplane.sqltypes import StrEnumType, UTCDateTime, utcnow


class Server(SQLModel, table=True):
    __tablename__ = "servers"
    __table_args__ = (
        # Keyset pagination walks (filter, id): one index per common filter.
        Index("ix_servers_org_id", "organisation_id", "id"),
        Index("ix_servers_state_id", "state", "id"),
        Index("ix_servers_plan_id", "plan_id", "id"),
        Index("ix_servers_host_id", "host_id", "id"),
        # A host runs several tenants; each has its own slot, which fixes its
        # ports, Unix user and Redis database on that host.
        UniqueConstraint("host_id", "slot", name="uq_servers_host_slot"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="RESTRICT")
    plan_id: uuid.UUID = Field(foreign_key="plans.id", ondelete="RESTRICT")
    host_id: uuid.UUID | None = Field(default=None, foreign_key="hosts.id", ondelete="RESTRICT")
    slot: int | None = None
    # LOCAL_DOMAIN in its ASCII (IDNA) form. Unique across every server ever
    # ordered: Mastodon's identity is bound to it, and a second server under a
    # domain other servers have federated with would inherit its keys' trust.
    domain: str = Field(sa_type=String(253), unique=True)
    state: ServerState = Field(
        default=ServerState.requested,
        sa_type=StrEnumType(ServerState, 20),  # type: ignore[call-overload]
    )
    state_reason: str | None = Field(default=None, sa_type=String(500))
    state_changed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    version: str | None = Field(default=None, sa_type=String(40))
    title: str = Field(sa_type=String(100))
    description: str = Field(default="", sa_type=String(200))
    contact_email: str | None = Field(default=None, sa_type=String(254))
    registrations_mode: str = Field(default="approved", sa_type=String(10))
    labels: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ServerEvent(SQLModel, table=True):
    """One lifecycle transition, kept for the server's timeline."""

    __tablename__ = "server_events"
    __table_args__ = (Index("ix_server_events_server_id", "server_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    server_id: uuid.UUID = Field(foreign_key="servers.id", ondelete="CASCADE")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    event: str = Field(sa_type=String(30))
    from_state: str = Field(sa_type=String(20))
    to_state: str = Field(sa_type=String(20))
    reason: str | None = Field(default=None, sa_type=String(500))
    actor: str = Field(sa_type=String(80))


class ServerSecrets(SQLModel, table=True):
    """Mastodon's secrets for one server, generated once and kept: changing
    SECRET_KEY_BASE or the Active Record encryption keys would make the
    server's stored data unreadable. One encrypted JSON document."""

    __tablename__ = "server_secrets"

    server_id: uuid.UUID = Field(foreign_key="servers.id", primary_key=True, ondelete="CASCADE")
    encrypted: str = Field(sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
