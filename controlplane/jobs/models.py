from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from controlplane.ids import uuid7
from controlplane.sqltypes import StrEnumType, UTCDateTime, utcnow


class JobState(StrEnum):
    pending = "pending"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


FINISHED = frozenset({JobState.succeeded, JobState.failed, JobState.cancelled})


class StepState(StrEnum):
    pending = "pending"
    running = "running"
    done = "done"
    failed = "failed"


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_server_id", "server_id", "id"),
        Index("ix_jobs_state_lease", "state", "lease_expires_at"),
    )

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    kind: str = Field(sa_type=String(30))
    server_id: uuid.UUID | None = Field(default=None, foreign_key="servers.id", ondelete="CASCADE")
    state: JobState = Field(
        default=JobState.pending,
        sa_type=StrEnumType(JobState, 16),  # type: ignore[call-overload]
    )
    params: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    error: str | None = Field(default=None, sa_type=Text)
    cancel_requested: bool = False
    # A worker holds a job through a lease it renews while it works; a lease
    # that runs out means the worker died, and the reconciler hands the job on.
    lease_owner: str | None = Field(default=None, sa_type=String(120))
    lease_expires_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    not_before: datetime | None = Field(default=None, sa_type=UTCDateTime)
    runs: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class JobStep(SQLModel, table=True):
    """A checkpoint: a step marked done is never run again for this job."""

    __tablename__ = "job_steps"
    __table_args__ = (UniqueConstraint("job_id", "name"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="jobs.id", ondelete="CASCADE")
    position: int
    name: str = Field(sa_type=String(40))
    state: StepState = Field(
        default=StepState.pending,
        sa_type=StrEnumType(StepState, 16),  # type: ignore[call-overload]
    )
    attempts: int = 0
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    error: str | None = Field(default=None, sa_type=Text)


class JobEvent(SQLModel, table=True):
    """One Ansible task on one host, with its result redacted."""

    __tablename__ = "job_events"
    __table_args__ = (Index("ix_job_events_job_id", "job_id", "id"),)

    id: uuid.UUID = Field(default_factory=uuid7, primary_key=True)
    job_id: uuid.UUID = Field(foreign_key="jobs.id", ondelete="CASCADE")
    step: str = Field(sa_type=String(40))
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    host: str | None = Field(default=None, sa_type=String(120))
    play: str | None = Field(default=None, sa_type=String(200))
    task: str | None = Field(default=None, sa_type=String(300))
    action: str | None = Field(default=None, sa_type=String(120))
    status: str = Field(sa_type=String(20))
    changed: bool = False
    duration_ms: int | None = None
    result: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
