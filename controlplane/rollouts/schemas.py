"""API shapes of releases, maintenance windows and rollouts."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator

from controlplane.rollouts import planning
from controlplane.rollouts.models import RolloutState, TargetState
from controlplane.schemas import Input, LabelKey, LabelValue, Output

Tag = Annotated[str, StringConstraints(min_length=2, max_length=40)]
Series = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,3}\.[0-9]{1,3}$")]
WaveSize = int | Annotated[str, StringConstraints(max_length=8)]


class ReleaseCreate(Input):
    tag: Tag = Field(examples=["v4.5.2"])
    released_on: date | None = None
    security: bool = False
    requires_assets_recompile: bool = False
    ruby_version: Annotated[str, StringConstraints(max_length=20)] | None = None
    notes: Annotated[str, StringConstraints(max_length=10_000)] = ""


class SeriesEntry(Input):
    series: Series
    end_of_support: date | None = None


class ReleaseImport(Input):
    """What `herd release import FILE` sends: the whole file, applied at once."""

    series: list[SeriesEntry] = Field(default_factory=list, max_length=100)
    releases: list[ReleaseCreate] = Field(default_factory=list, max_length=1000)


class ReleaseOut(Output):
    id: uuid.UUID
    tag: str
    series: str
    released_on: date | None
    security: bool
    requires_assets_recompile: bool
    ruby_version: str | None
    notes: str
    end_of_support: date | None = None
    supported: bool = True


class SeriesOut(Output):
    series: str
    end_of_support: date | None


class ImportResult(Output):
    created: list[str]
    unchanged: list[str]
    series: list[SeriesOut]


class WindowIn(Input):
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 = Monday … 7 = Sunday")
    start: Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = Field(
        description="Local wall-clock time in the organisation's time zone, HH:MM",
        examples=["02:00"],
    )
    duration_minutes: int = Field(ge=1, le=7 * 24 * 60)
    server_id: uuid.UUID | None = Field(
        default=None, description="Only this server; its windows replace the organisation's"
    )


class WindowsPut(Input):
    windows: list[WindowIn] = Field(max_length=100)


class WindowOut(Output):
    id: uuid.UUID
    weekday: int
    start: str
    duration_minutes: int
    server_id: uuid.UUID | None


class WindowsOut(Output):
    timezone: str
    windows: list[WindowOut]


class Selector(Input):
    """Which active servers a rollout covers; the criteria combine (AND)."""

    all: bool = False
    series: list[Series] = Field(default_factory=list, max_length=20)
    organisations: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    plans: list[Annotated[str, StringConstraints(max_length=40)]] = Field(
        default_factory=list, max_length=50
    )
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, max_length=20)
    servers: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)

    @model_validator(mode="after")
    def _something(self) -> Selector:
        if not self.all and not (
            self.series or self.organisations or self.plans or self.labels or self.servers
        ):
            raise ValueError(
                "select servers: set all, or series, organisations, plans, labels or servers"
            )
        return self


class RolloutSpec(Input):
    target: Tag = Field(description="A release in the catalogue", examples=["v4.5.2"])
    selector: Selector
    waves: list[WaveSize] = Field(
        default_factory=lambda: [1, "25%", "100%"],
        max_length=50,
        description="Like Ansible's serial: counts or percentages; the last repeats",
    )
    concurrency: int = Field(default=10, ge=1, le=1000)
    soak_seconds: int = Field(default=0, ge=0, le=7 * 86400)
    failure_budget: int | Annotated[str, StringConstraints(max_length=8)] = Field(
        default=0,
        description="Failed servers tolerated across all waves (a count or a percentage "
        "such as '5%'); one more halts the rollout",
    )
    urgent: bool = Field(
        default=False, description="Security: may go outside windows once notice has run"
    )
    notice_seconds: int = Field(default=0, ge=0, le=30 * 86400)

    @field_validator("waves")
    @classmethod
    def _waves(cls, value: list[Any]) -> list[Any]:
        planning.validate_waves(value)
        return value

    @field_validator("failure_budget")
    @classmethod
    def _budget(cls, value: int | str) -> int | str:
        planning.budget_count(value, 100)
        return value


class PlannedServerOut(Output):
    server_id: uuid.UUID
    organisation_id: uuid.UUID
    domain: str
    version: str | None
    wave: int | None
    skip_reason: str | None
    starts_at: datetime | None


class PlannedWaveOut(Output):
    index: int
    size: int
    starts_at: datetime
    ends_at: datetime


class PlanOut(Output):
    target: str
    failure_budget: int
    to_upgrade: int
    waves: list[PlannedWaveOut]
    servers: list[PlannedServerOut]


class WaveProgress(Output):
    index: int
    size: int
    counts: dict[str, int]


class RolloutOut(Output):
    id: uuid.UUID
    target_version: str
    state: RolloutState
    state_reason: str | None
    selector: dict[str, Any]
    waves: list[Any]
    concurrency: int
    soak_seconds: int
    failure_budget: str
    failure_budget_count: int
    urgent: bool
    notice_seconds: int
    current_wave: int
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    counts: dict[str, int] = Field(default_factory=dict)
    failures: int = 0
    progress: list[WaveProgress] = Field(default_factory=list)


class TargetOut(Output):
    server_id: uuid.UUID
    organisation_id: uuid.UUID
    domain: str | None = None
    wave: int
    position: int
    state: TargetState
    job_id: uuid.UUID | None
    from_version: str | None
    outcome: str | None
    started_at: datetime | None
    finished_at: datetime | None
