"""Runs of a bundle that in-house teams report back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import UTCDateTime, utcnow


class PlaybookReport(SQLModel, table=True):
    """One ansible-playbook run of a pulled bundle, as the team reported it:
    which playbook, how it ended, and the PLAY RECAP per host."""

    __tablename__ = "playbook_reports"
    __table_args__ = (Index("ix_playbook_reports_org_id", "organisation_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    # Plain ids, like the audit log's: a report outlives the person and token.
    reported_by_user_id: uuid.UUID | None = None
    reported_by_token_id: uuid.UUID | None = None
    playbook: str = Field(sa_type=String(200))
    status: str = Field(sa_type=String(16))  # succeeded | failed
    bundle_version: str = Field(sa_type=String(40))
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # [{"host", "server_id" (when the host is one of the organisation's
    # servers), "ok", "changed", "unreachable", "failed", "skipped",
    # "rescued", "ignored"}], sorted by host.
    hosts: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSON)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
