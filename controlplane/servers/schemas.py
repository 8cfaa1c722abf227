from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from controlplane.schemas import Email, Input, LabelKey, LabelValue, Output
from controlplane.servers.lifecycle import ServerState

RegistrationsMode = Literal["open", "approved", "none"]
Title = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# Mastodon caps site_short_description at 200 characters.
ShortDescription = Annotated[str, StringConstraints(max_length=200)]
Labels = Annotated[dict[LabelKey, LabelValue], Field(max_length=32)]


class ServerOrder(Input):
    domain: Annotated[str, StringConstraints(min_length=1, max_length=300)] = Field(
        description="LOCAL_DOMAIN of the Mastodon server; Unicode names are accepted "
        "and stored in their IDNA form. It can never change after ordering.",
        examples=["social.example-university.edu"],
    )
    plan: Annotated[str, StringConstraints(min_length=1, max_length=40)] = Field(
        description="Code of an active plan", examples=["small"]
    )
    title: Title
    description: ShortDescription = ""
    contact_email: Email | None = None
    registrations_mode: RegistrationsMode = "approved"
    labels: Labels = Field(default_factory=dict)


class ServerUpdate(Input):
    title: Title | None = None
    description: ShortDescription | None = None
    contact_email: Email | None = None
    registrations_mode: RegistrationsMode | None = None
    labels: Labels | None = None

    @model_validator(mode="before")
    @classmethod
    def _domain_is_fixed(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("domain" in data or "local_domain" in data):
            raise ValueError(
                "the domain of a server never changes after ordering; order a new server instead"
            )
        return data


class StateChange(Input):
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500)]


class OptionalReason(Input):
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class ServerOut(Output):
    id: uuid.UUID
    organisation_id: uuid.UUID
    domain: str
    domain_unicode: str
    plan: str
    state: ServerState
    state_reason: str | None
    state_changed_at: datetime
    version: str | None
    title: str
    description: str
    contact_email: str | None
    registrations_mode: str
    labels: dict[str, str]
    host_id: uuid.UUID | None = Field(description="Staff only; null for organisations.")
    created_at: datetime
    updated_at: datetime


class ServerEventOut(Output):
    id: uuid.UUID
    at: datetime
    event: str
    from_state: str
    to_state: str
    reason: str | None
    actor: str
