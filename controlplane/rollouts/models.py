"""Tables of the release catalogue, maintenance windows and rollouts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import StrEnumType, UTCDateTime, utcnow


class ReleaseSeries(SQLModel, table=True):
    """A minor series such as 4.5, and until when it gets security fixes."""

    __tablename__ = "release_series"

    series: str = Field(sa_type=String(20), primary_key=True)
    end_of_support: date | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CatalogueRelease(SQLModel, table=True):
    """A Mastodon release staff have published to the fleet."""

    __tablename__ = "releases"

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    tag: str = Field(sa_type=String(40), unique=True)
    series: str = Field(sa_type=String(20), index=True)
    released_on: date | None = None
    security: bool = False
    # Upgrade notes that change how long or how risky an upgrade is.
    requires_assets_recompile: bool = False
    ruby_version: str | None = Field(default=None, sa_type=String(20))
    notes: str = Field(default="", sa_type=Text)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class MaintenanceWindow(SQLModel, table=True):
    """A weekly window, in the organisation's time zone, in which a normal
    rollout may touch a server. A window set on a server replaces its
    organisation's windows for that server."""

    __tablename__ = "maintenance_windows"
    __table_args__ = (
        Index("ix_maintenance_windows_org", "organisation_id"),
        Index("ix_maintenance_windows_server", "server_id"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    organisation_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    server_id: uuid.UUID | None = Field(default=None, foreign_key="servers.id", ondelete="CASCADE")
    # ISO weekday, 1 = Monday; local wall-clock start; length in minutes.
    weekday: int
    start_minute: int
    duration_minutes: int
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RolloutState(StrEnum):
    planned = "planned"
    running = "running"
    paused = "paused"
    # Stopped by Herd itself (failure budget spent); says why.
    halted = "halted"
    aborted = "aborted"
    completed = "completed"


class TargetState(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    # Rolled back, or failed outright: counts against the budget.
    failed = "failed"
    # Already on the target, or gone from the fleet, when its turn came.
    skipped = "skipped"


class Rollout(SQLModel, table=True):
    __tablename__ = "rollouts"
    __table_args__ = (Index("ix_rollouts_state", "state", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    target_version: str = Field(sa_type=String(40))
    state: RolloutState = Field(
        default=RolloutState.planned,
        sa_type=StrEnumType(RolloutState, 16),  # type: ignore[call-overload]
    )
    state_reason: str | None = Field(default=None, sa_type=String(500))
    selector: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    # Ansible `serial` notation: [1, "5%", "25%", "100%"].
    waves: list[Any] = Field(default_factory=list, sa_type=JSON)
    concurrency: int = 10
    soak_seconds: int = 0
    # As given ("2" or "10%") and resolved against the rollout's size.
    failure_budget: str = Field(default="0", sa_type=String(10))
    failure_budget_count: int = 0
    urgent: bool = False
    notice_seconds: int = 0
    current_wave: int = 0
    # When the current wave's last server finished: its soak starts then.
    wave_done_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by: str = Field(sa_type=String(120))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class RolloutTarget(SQLModel, table=True):
    """One server of a rollout: its wave and, once started, its job. The job
    id recorded here is what keeps a restarted rollout from upgrading a
    server twice."""

    __tablename__ = "rollout_targets"
    __table_args__ = (
        UniqueConstraint("rollout_id", "server_id"),
        Index("ix_rollout_targets_wave", "rollout_id", "wave", "position"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    rollout_id: uuid.UUID = Field(foreign_key="rollouts.id", ondelete="CASCADE")
    server_id: uuid.UUID = Field(foreign_key="servers.id", ondelete="CASCADE")
    organisation_id: uuid.UUID = Field(foreign_key="organisations.id", ondelete="CASCADE")
    wave: int
    position: int
    state: TargetState = Field(
        default=TargetState.pending,
        sa_type=StrEnumType(TargetState, 16),  # type: ignore[call-overload]
    )
    job_id: uuid.UUID | None = Field(default=None, foreign_key="jobs.id", ondelete="SET NULL")
    from_version: str | None = Field(default=None, sa_type=String(40))
    outcome: str | None = Field(default=None, sa_type=String(500))
    notified_before_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    notified_after_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
