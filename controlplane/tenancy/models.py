from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, UniqueConstraint
from sqlmodel import Field, SQLModel

from controlplane.auth.roles import OrgRole, StaffRole
from controlplane.ids import uuid7
from controlplane.sqltypes import StrEnumType, UTCDateTime, utcnow


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    email: str = Field(sa_type=String(254), unique=True, index=True)
    name: str = Field(default="", sa_type=String(200))
    staff_role: StaffRole | None = Field(
        default=None,
        sa_type=StrEnumType(StaffRole, 16),  # type: ignore[call-overload]
    )
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Organisation(SQLModel, table=True):
    __tablename__ = "organisations"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    slug: str = Field(sa_type=String(63), unique=True, index=True)
    name: str = Field(sa_type=String(200))
    timezone: str = Field(default="UTC", sa_type=String(64))
    billing_email: str | None = Field(default=None, sa_type=String(254))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Membership(SQLModel, table=True):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("organisation_id", "user_id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    role: OrgRole = Field(sa_type=StrEnumType(OrgRole, 16))  # type: ignore[call-overload]
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Invitation(SQLModel, table=True):
    __tablename__ = "invitations"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organisation_id: uuid.UUID = Field(
        foreign_key="organisations.id", index=True, ondelete="CASCADE"
    )
    email: str = Field(sa_type=String(254))
    role: OrgRole = Field(sa_type=StrEnumType(OrgRole, 16))  # type: ignore[call-overload]
    token_digest: str = Field(sa_type=String(64), unique=True)
    invited_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    accepted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    accepted_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
