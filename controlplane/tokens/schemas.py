from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator

from controlplane.auth.roles import Scope
from controlplane.schemas import Input, Output
from controlplane.settings import get_settings


class TokenCreate(Input):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    scopes: list[Scope] = Field(default_factory=lambda: [Scope.read], min_length=1, max_length=8)
    expires_in_days: int = Field(default=90, ge=1)
    organisation_id: uuid.UUID | None = Field(
        default=None, description="Bind the token to one organisation."
    )

    @field_validator("expires_in_days")
    @classmethod
    def _bounded(cls, value: int) -> int:
        limit = get_settings().token_max_days
        if value > limit:
            raise ValueError(f"tokens live at most {limit} days")
        return value


class TokenOut(Output):
    id: uuid.UUID
    name: str
    organisation_id: uuid.UUID | None
    user_id: uuid.UUID
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None
    prefix: str = Field(description="The token's public start, to recognise it in a list.")


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; only its digest is kept.")
