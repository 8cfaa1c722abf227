"""A server's branding as Herd records it. Images are not in the database:
each row names a file under the data directory by its SHA-256, so the same
image uploaded twice is stored once and a row never points at changed bytes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String, Text
from sqlmodel import Field, SQLModel

from controlplane.sqltypes import UTCDateTime, utcnow


class ServerBranding(SQLModel, table=True):
    __tablename__ = "server_branding"

    server_id: uuid.UUID = Field(foreign_key="servers.id", primary_key=True, ondelete="CASCADE")
    # "#rrggbb", or "" for the role's defaults.
    primary_color: str = Field(default="", sa_type=String(7))
    accent_color: str = Field(default="", sa_type=String(7))
    background_color: str = Field(default="", sa_type=String(7))
    text_color: str = Field(default="", sa_type=String(7))
    custom_css: str = Field(default="", sa_type=Text)
    logo_sha256: str | None = Field(default=None, sa_type=String(64))
    logo_type: str | None = Field(default=None, sa_type=String(20))
    background_sha256: str | None = Field(default=None, sa_type=String(64))
    background_type: str | None = Field(default=None, sa_type=String(20))
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
