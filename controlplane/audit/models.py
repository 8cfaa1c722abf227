from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import UTCDateTime, utcnow


class AuditEntry(SQLModel, table=True):
    """Who did what to what. The database refuses UPDATE and DELETE on this
    table (triggers in the migration), so an entry, once written, stays."""

    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_org_id", "organisation_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Plain ids rather than foreign keys: the log outlives what it mentions.
    actor_user_id: uuid.UUID | None = None
    actor_token_id: uuid.UUID | None = None
    actor_label: str = Field(sa_type=String(254))
    organisation_id: uuid.UUID | None = None
    action: str = Field(sa_type=String(60), index=True)
    target_type: str = Field(sa_type=String(30))
    target_id: str | None = Field(default=None, sa_type=String(64))
    request_id: str | None = Field(default=None, sa_type=String(64))
    details: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
