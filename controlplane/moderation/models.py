"""Tables of moderation staffing.

A team and its members, and an assignment of one team to a server, are
desired state that staff change through the API. `ModeratorAccess` rows are
what the `moderators` job has done (or is doing) on a server: one per
Mastodon account Herd made a moderator there, holding the admin API token
Herd generated for it, encrypted, until the job confirms it is revoked.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import StrEnumType, UTCDateTime, utcnow


class ModerationTeam(SQLModel, table=True):
    __tablename__ = "moderation_teams"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    name: str = Field(sa_type=String(100), unique=True)
    # BCP-47 language tags the team moderates in ("en", "de-AT").
    languages: list[str] = Field(default_factory=list, sa_type=JSON)
    # IANA time zone the coverage windows are read in.
    timezone: str = Field(default="UTC", sa_type=String(64))
    # Weekly windows, as {"weekday": 1-7, "start": "HH:MM", "duration_minutes": n}.
    coverage: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class TeamMember(SQLModel, table=True):
    __tablename__ = "moderation_team_members"
    __table_args__ = (
        UniqueConstraint("team_id", "user_id"),
        UniqueConstraint("team_id", "mastodon_username"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    team_id: uuid.UUID = Field(foreign_key="moderation_teams.id", ondelete="CASCADE")
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    # The account name this staff member moderates under on every server.
    mastodon_username: str = Field(sa_type=String(30))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Assignment(SQLModel, table=True):
    """One team staffs one server, answering reports within
    `response_minutes` as agreed with the organisation."""

    __tablename__ = "moderation_assignments"

    server_id: uuid.UUID = Field(foreign_key="servers.id", primary_key=True, ondelete="CASCADE")
    team_id: uuid.UUID = Field(foreign_key="moderation_teams.id", index=True, ondelete="RESTRICT")
    response_minutes: int
    assigned_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    assigned_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class AccessState(StrEnum):
    pending = "pending"  # token generated in Herd, not yet confirmed on the server
    granted = "granted"  # the account is a Moderator and the token works
    revoking = "revoking"  # to be taken away at the next run
    revoked = "revoked"  # gone on the server; Herd keeps no token


class ModeratorAccess(SQLModel, table=True):
    __tablename__ = "moderator_access"
    __table_args__ = (
        UniqueConstraint("server_id", "mastodon_username"),
        Index("ix_moderator_access_state", "server_id", "state"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    server_id: uuid.UUID = Field(foreign_key="servers.id", ondelete="CASCADE")
    user_id: uuid.UUID | None = Field(
        default=None, foreign_key="users.id", index=True, ondelete="SET NULL"
    )
    mastodon_username: str = Field(sa_type=String(30))
    # Mastodon's account id, once the server told us.
    account_id: str | None = Field(default=None, sa_type=String(40))
    token_encrypted: str | None = Field(default=None, sa_type=Text, repr=False)
    state: AccessState = Field(
        default=AccessState.pending,
        sa_type=StrEnumType(AccessState, 16),  # type: ignore[call-overload]
    )
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    granted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
