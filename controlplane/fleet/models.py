from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, String, Text
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import StrEnumType, UTCDateTime, utcnow


class HostState(StrEnum):
    active = "active"
    # Keeps its servers but takes no new ones.
    draining = "draining"
    disabled = "disabled"


class Host(SQLModel, table=True):
    __tablename__ = "hosts"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    name: str = Field(sa_type=String(63), unique=True, index=True)
    address: str = Field(sa_type=String(253))
    ssh_port: int = 22
    ssh_user: str = Field(default="root", sa_type=String(32))
    # Encrypted with the deployment's secret key; never returned by the API.
    ssh_private_key_encrypted: str | None = Field(default=None, sa_type=Text)
    capacity: int = 10
    labels: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    state: HostState = Field(
        default=HostState.active,
        sa_type=StrEnumType(HostState, 16),  # type: ignore[call-overload]
    )
    provider: str = Field(default="static", sa_type=String(20))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
