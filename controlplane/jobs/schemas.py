from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from controlplane.jobs.models import JobState, StepState
from controlplane.schemas import Output


class StepOut(Output):
    name: str
    position: int
    state: StepState
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    result: dict[str, Any]
    error: str | None


class JobOut(Output):
    id: uuid.UUID
    kind: str
    server_id: uuid.UUID | None
    state: JobState
    params: dict[str, Any]
    error: str | None
    cancel_requested: bool
    runs: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobDetail(JobOut):
    steps: list[StepOut]


class JobEventOut(Output):
    id: uuid.UUID
    step: str
    at: datetime
    host: str | None
    play: str | None
    task: str | None
    action: str | None
    status: str
    changed: bool
    duration_ms: int | None
    result: dict[str, Any]
