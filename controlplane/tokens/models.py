from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, String
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import UTCDateTime, utcnow


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_tokens"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    # A token bound to one organisation acts only there, whatever else its
    # user may reach.
    organisation_id: uuid.UUID | None = Field(
        default=None, foreign_key="organisations.id", index=True, ondelete="CASCADE"
    )
    name: str = Field(sa_type=String(100))
    # The public part of the token, used to find the row; the secret part is
    # known only through its digest.
    lookup: str = Field(sa_type=String(16), unique=True)
    secret_digest: str = Field(sa_type=String(64))
    scopes: list[str] = Field(sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
