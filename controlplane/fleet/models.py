from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, String, Text
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import StrEnumType, UTCDateTime, utcnow


class HostState(StrEnum):
    # Being created by a provider (EC2); takes no servers yet.
    pending = "pending"
    failed = "failed"
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
    # Slot n's web process listens on web_port_base + n, its streaming
    # process on streaming_port_base + n.
    web_port_base: int = 3000
    streaming_port_base: int = 4000
    labels: dict[str, str] = Field(default_factory=dict, sa_type=JSON)
    state: HostState = Field(
        default=HostState.active,
        sa_type=StrEnumType(HostState, 16),  # type: ignore[call-overload]
    )
    provider: str = Field(default="static", sa_type=String(20))
    # The provider's name for the machine (an EC2 instance id) and what it
    # was asked to create, so a retried launch asks for the same thing.
    provider_ref: str | None = Field(default=None, sa_type=String(64))
    launch_spec: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
