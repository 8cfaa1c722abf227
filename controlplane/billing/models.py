from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import String
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import UTCDateTime, utcnow


class Plan(SQLModel, table=True):
    __tablename__ = "plans"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    code: str = Field(sa_type=String(40), unique=True, index=True)
    name: str = Field(sa_type=String(100))
    description: str = Field(default="", sa_type=String(500))
    monthly_price_cents: int = Field(ge=0)
    currency: str = Field(default="eur", sa_type=String(3))
    max_users: int = Field(ge=1)
    storage_gb: int = Field(ge=1)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
