from __future__ import annotations

import uuid
import zoneinfo
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, field_validator

from controlplane.auth.roles import OrgRole, StaffRole
from controlplane.schemas import Email, Input, Name, Output

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")]


def _known_timezone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name like Europe/Berlin"
        ) from exc
    return value


TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_timezone)]


class OrganisationCreate(Input):
    name: Name
    slug: Slug
    timezone: TimeZone = "UTC"
    billing_email: Email | None = None
    owner_email: Email | None = Field(
        default=None,
        description="Staff only: create the organisation for this person, who becomes its owner.",
    )


class OrganisationUpdate(Input):
    name: Name | None = None
    timezone: TimeZone | None = None
    billing_email: Email | None = None

    @field_validator("name", "timezone")
    @classmethod
    def _not_null(cls, value: str | None) -> str:
        # Left out means unchanged; null would blank a required column.
        if value is None:
            raise ValueError("may be left out, but not null")
        return value


class OrganisationOut(Output):
    id: uuid.UUID
    slug: str
    name: str
    timezone: str
    billing_email: str | None
    created_at: datetime


class MemberOut(Output):
    user_id: uuid.UUID
    email: str
    name: str
    role: OrgRole
    joined_at: datetime


class MemberUpdate(Input):
    role: OrgRole


class InvitationCreate(Input):
    email: Email
    role: OrgRole = OrgRole.viewer


class InvitationOut(Output):
    id: uuid.UUID
    organisation_id: uuid.UUID
    email: str
    role: OrgRole
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None


class InvitationCreated(InvitationOut):
    token: str = Field(description="Shown once: give it to the invitee to accept.")


class InvitationAccept(Input):
    token: Annotated[str, StringConstraints(min_length=20, max_length=100)]


class InvitationAccepted(Output):
    organisation_id: uuid.UUID
    role: OrgRole
    api_token: str | None = Field(
        default=None,
        description="For a newcomer who accepted without a token: a first API token, bound to "
        "this organisation, shown once.",
    )


class MeOut(Output):
    id: uuid.UUID
    email: str
    name: str
    staff_role: StaffRole | None
    organisations: dict[uuid.UUID, OrgRole]
