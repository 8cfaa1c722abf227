from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from controlplane.schemas import Input, Output

PlanCode = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[a-z]{3}$")]


class PlanCreate(Input):
    code: PlanCode
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    description: Annotated[str, StringConstraints(max_length=500)] = ""
    monthly_price_cents: int = Field(ge=0, le=100_000_000)
    currency: Currency = "eur"
    max_users: int = Field(ge=1, le=10_000_000)
    storage_gb: int = Field(ge=1, le=1_000_000)


class PlanUpdate(Input):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    monthly_price_cents: int | None = Field(default=None, ge=0, le=100_000_000)
    max_users: int | None = Field(default=None, ge=1, le=10_000_000)
    storage_gb: int | None = Field(default=None, ge=1, le=1_000_000)
    active: bool | None = None


class PlanOut(Output):
    id: uuid.UUID
    code: str
    name: str
    description: str
    monthly_price_cents: int
    currency: str
    max_users: int
    storage_gb: int
    active: bool
    created_at: datetime
