"""API shapes of the fleet moderation queue and the monthly figures."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from controlplane.moderation.mastodon_admin import ActionType
from controlplane.schemas import Input, Output


class ReportOut(Output):
    id: uuid.UUID
    server_id: uuid.UUID
    remote_id: str = Field(description="the report's id on its Mastodon server")
    category: str
    comment: str
    forwarded: bool
    target_account_id: str
    target_acct: str
    reporter_acct: str | None
    assigned_acct: str | None
    created_at: datetime
    updated_at: datetime
    action_taken: bool
    action_taken_at: datetime | None
    first_seen_at: datetime
    first_action_at: datetime | None


class QueueItemOut(Output):
    report: ReportOut
    server_domain: str
    organisation_id: uuid.UUID
    age_minutes: int
    response_minutes: int = Field(description="the response time agreed for the server")
    due_at: datetime
    minutes_to_due: int = Field(description="negative once overdue")
    overdue: bool


class UnreachableOut(Output):
    server_id: uuid.UUID
    server_domain: str
    since: datetime = Field(description="the first failed pull after the last success")
    error: str | None


class QueueOut(Output):
    items: list[QueueItemOut]
    total: int = Field(description="open reports matching the filters, on every page")
    unreachable: list[UnreachableOut] = Field(
        description="staffed servers whose reports could not be pulled: the list may miss theirs"
    )
    next_cursor: str | None = Field(
        default=None, description="pass as cursor for the next page; null on the last"
    )


class AccountActionIn(Input):
    type: ActionType = "none"
    text: Annotated[str, StringConstraints(max_length=5000)] = ""


class DeliveryOut(Output):
    event: str
    stored: bool
    report_id: uuid.UUID | None


class FiguresOut(Output):
    server_id: uuid.UUID
    month: str
    timezone: str
    reports_received: int
    reports_acted_on: int
    median_minutes_to_first_action: float | None
