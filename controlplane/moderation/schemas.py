"""API shapes of moderation teams and of a server's moderation staffing."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from controlplane.rollouts.windows import MINUTES_PER_DAY, zone
from controlplane.schemas import Input, Output

# Mastodon's local user names, as Herd creates them: lower case, digits, _.
MastodonUsername = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,30}$")]
# A BCP-47 tag in its common shapes: "en", "pt-BR", "zh-Hant-TW", "gsw".
Language = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z]{4})?(-([A-Za-z]{2}|[0-9]{3}))?$")
]
TeamName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
WEEK = 7 * MINUTES_PER_DAY


class CoverageWindow(Input):
    weekday: int = Field(ge=1, le=7, description="ISO weekday: 1 = Monday … 7 = Sunday")
    start: Annotated[str, StringConstraints(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = Field(
        description="Local wall-clock time in the team's time zone, HH:MM", examples=["08:00"]
    )
    duration_minutes: int = Field(ge=1, le=WEEK)


class TeamIn(Input):
    name: TeamName
    languages: list[Language] = Field(default_factory=list, max_length=30)
    timezone: Annotated[str, StringConstraints(max_length=64)] = Field(
        default="UTC", examples=["Europe/Berlin"]
    )
    coverage: list[CoverageWindow] = Field(
        default_factory=list, max_length=100, description="Weekly hours the team answers"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)  # ValueError: unknown time zone
        return value

    @field_validator("languages")
    @classmethod
    def _distinct(cls, value: list[str]) -> list[str]:
        seen: dict[str, str] = {}
        for tag in value:
            seen.setdefault(tag.lower(), tag)
        return list(seen.values())


class MemberIn(Input):
    user_id: uuid.UUID = Field(description="A staff user")
    mastodon_username: MastodonUsername = Field(
        description="The account name used on every server the team staffs"
    )


class MemberOut(Output):
    user_id: uuid.UUID
    email: str
    name: str
    mastodon_username: str


class TeamOut(Output):
    id: uuid.UUID
    name: str
    languages: list[str]
    timezone: str
    coverage: list[CoverageWindow]
    members: list[MemberOut]
    servers: int = Field(description="How many servers the team staffs")
    created_at: datetime
    updated_at: datetime
    jobs: list[uuid.UUID] = Field(
        default_factory=list, description="`moderators` jobs a change of members started"
    )


class AssignmentIn(Input):
    """The team, and the agreed response time in minutes or hours (one)."""

    team_id: uuid.UUID
    response_minutes: int | None = Field(default=None, ge=1, le=WEEK)
    response_hours: int | None = Field(default=None, ge=1, le=7 * 24)

    @model_validator(mode="after")
    def _one_response_time(self) -> AssignmentIn:
        if (self.response_minutes is None) == (self.response_hours is None):
            raise ValueError("give the response time as response_minutes or response_hours")
        return self

    @property
    def minutes(self) -> int:
        return self.response_minutes or 60 * (self.response_hours or 0)


class StaffingTeamOut(Output):
    """What the organisation sees of the team: no people, no addresses."""

    name: str
    languages: list[str]
    timezone: str
    coverage: list[CoverageWindow]


class ModeratorOut(Output):
    mastodon_username: str
    state: str


class StaffingOut(Output):
    server_id: uuid.UUID
    staffed: bool = Field(description="A team is assigned and the add-on is in force")
    addon_active: bool
    team: StaffingTeamOut | None
    response_minutes: int | None
    assigned_at: datetime | None
    moderators: list[ModeratorOut]
    job_id: uuid.UUID | None = None
