"""Reading the queue: staff's fleet-wide list of open reports by urgency,
and an organisation's monthly figures for one server."""

from __future__ import annotations

import re
import statistics
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select

from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.moderation import access
from controlplane.moderation.reports import ModerationFeed, ModerationReport
from controlplane.pagination import encode_key_cursor
from controlplane.problems import InvalidInput, NotFound
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Organisation

MAX_QUEUE = 500


@dataclass(frozen=True)
class QueueFilter:
    server_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    overdue_only: bool = False
    limit: int = 100
    # The next page starts after this (due_at, report id); from the last
    # page's next_cursor.
    after: tuple[datetime, uuid.UUID] | None = None


@dataclass(frozen=True)
class QueueItem:
    report: ModerationReport
    server: Server
    response_minutes: int
    due_at: datetime
    now: datetime

    @property
    def age_minutes(self) -> int:
        return int((self.now - self.report.created_at).total_seconds() // 60)

    @property
    def overdue(self) -> bool:
        return self.now > self.due_at

    @property
    def minutes_to_due(self) -> int:
        """Negative once overdue."""
        return int((self.due_at - self.now).total_seconds() // 60)


@dataclass(frozen=True)
class Unreachable:
    server: Server
    since: datetime
    error: str | None


@dataclass(frozen=True)
class QueueView:
    items: list[QueueItem]
    total: int
    unreachable: list[Unreachable]
    next_cursor: str | None = None


def open_queue(
    session: Session, principal: Principal, filters: QueueFilter, now: datetime | None = None
) -> QueueView:
    """Open reports of every staffed server, most overdue first, then the
    closest to due. Filters are SQL; the order needs each server's agreed
    response time, so the (bounded) set is ordered here. Pages follow one
    another by (due time, report id), so a report resolved meanwhile does
    not shift the next page; `total` counts every page."""
    principal.require_staff(StaffPerm.fleet_read)
    now = now or utcnow()
    staffed = {
        server.id: (server, assignment.response_minutes)
        for server, assignment in access.staffed_servers(session)
        if (filters.server_id is None or server.id == filters.server_id)
        and (filters.organisation_id is None or server.organisation_id == filters.organisation_id)
    }
    if not staffed:
        return QueueView([], 0, [])
    statement = select(ModerationReport).where(
        col(ModerationReport.action_taken).is_(False),
        col(ModerationReport.server_id).in_(list(staffed)),
    )
    if filters.overdue_only:
        # Overdue: created before now minus that server's response time.
        statement = statement.where(
            or_(
                *(
                    and_(
                        ModerationReport.server_id == server_id,
                        col(ModerationReport.created_at) < now - timedelta(minutes=minutes),
                    )
                    for server_id, (_, minutes) in staffed.items()
                )
            )
        )
    rows = session.exec(statement.order_by(col(ModerationReport.created_at))).all()
    items = sorted(
        (
            QueueItem(
                row,
                staffed[row.server_id][0],
                staffed[row.server_id][1],
                row.created_at + timedelta(minutes=staffed[row.server_id][1]),
                now,
            )
            for row in rows
        ),
        key=lambda item: (item.due_at, item.report.id),
    )
    feeds = session.exec(
        select(ModerationFeed).where(
            col(ModerationFeed.server_id).in_(list(staffed)),
            col(ModerationFeed.failing_since).is_not(None),
        )
    ).all()
    unreachable = [
        Unreachable(staffed[feed.server_id][0], feed.failing_since, feed.last_error)
        for feed in feeds
        if feed.failing_since is not None
    ]
    size = min(filters.limit, MAX_QUEUE)
    after = filters.after
    following = [i for i in items if after is None or (i.due_at, i.report.id) > after]
    page = following[:size]
    more = len(following) > size
    cursor = encode_key_cursor(page[-1].due_at, page[-1].report.id) if more else None
    return QueueView(page, len(items), unreachable, cursor)


# -- an organisation's figures -----------------------------------------------------------

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


@dataclass(frozen=True)
class Figures:
    server_id: uuid.UUID
    month: str
    timezone: str
    reports_received: int
    reports_acted_on: int
    median_minutes_to_first_action: float | None


def month_bounds(month: str, zone: ZoneInfo) -> tuple[datetime, datetime]:
    match = _MONTH.fullmatch(month)
    if match is None:
        raise InvalidInput("month must be YYYY-MM", field="month")
    year, number = int(match.group(1)), int(match.group(2))
    try:
        start = datetime(year, number, 1, tzinfo=zone)
        end = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidInput(f"{month} is outside the calendar Herd keeps", field="month") from None


def figures(
    session: Session,
    principal: Principal,
    server_id: uuid.UUID,
    month: str | None,
    now: datetime | None = None,
) -> Figures:
    """Reports received in a calendar month of the organisation's time zone
    (by when they were made on the server) and the median time from a
    report to the first action on it, over those acted on so far."""
    server = session.get(Server, server_id)
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("server not found")
    principal.require(server.organisation_id, Perm.servers_read, "server")
    organisation = session.get(Organisation, server.organisation_id)
    try:
        zone = ZoneInfo(organisation.timezone if organisation else "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    month = month or (now or utcnow()).astimezone(zone).strftime("%Y-%m")
    start, end = month_bounds(month, zone)
    rows = session.exec(
        select(ModerationReport.created_at, ModerationReport.first_action_at).where(
            ModerationReport.server_id == server_id,
            col(ModerationReport.created_at) >= start,
            col(ModerationReport.created_at) < end,
        )
    ).all()
    waits = [(acted - made).total_seconds() / 60 for made, acted in rows if acted is not None]
    return Figures(
        server_id=server_id,
        month=month,
        timezone=zone.key,
        reports_received=len(rows),
        reports_acted_on=len(waits),
        median_minutes_to_first_action=round(statistics.median(waits), 1) if waits else None,
    )
