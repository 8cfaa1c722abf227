"""The fleet moderation queue over HTTP: Mastodon's webhook deliveries, the
staff queue and actions, and an organisation's monthly figures."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from controlplane.deps import API_PREFIX, PrincipalDep, SessionDep
from controlplane.moderation import queue, queue_actions, queue_views
from controlplane.moderation.mastodon_admin import ReportChange
from controlplane.moderation.queue_schemas import (
    AccountActionIn,
    DeliveryOut,
    FiguresOut,
    QueueItemOut,
    QueueOut,
    ReportOut,
    UnreachableOut,
)
from controlplane.pagination import decode_key_cursor

router = APIRouter(prefix=API_PREFIX, tags=["moderation"])


@router.post(
    queue.WEBHOOK_PATH_PREFIX.removeprefix(API_PREFIX) + "{server_id}", response_model=DeliveryOut
)
async def receive_webhook(
    server_id: uuid.UUID, request: Request, session: SessionDep
) -> DeliveryOut:
    """A Mastodon webhook delivery (`report.created`, `report.updated`),
    authenticated by `X-Hub-Signature: sha256=<HMAC-SHA256 of the body>`
    with the server's webhook secret; 404 for a server with none."""
    # The secret first: an unknown server is refused before its body is read.
    secret = await run_in_threadpool(queue.delivery_secret, session, server_id)
    body = await request.body()
    delivery = await run_in_threadpool(
        queue.receive, session, server_id, secret, body, request.headers.get(queue.SIGNATURE_HEADER)
    )
    stored = delivery.stored
    return DeliveryOut(
        event=delivery.event, stored=stored is not None, report_id=stored.id if stored else None
    )


@router.get("/moderation/queue", response_model=QueueOut)
def get_queue(
    principal: PrincipalDep,
    session: SessionDep,
    server_id: Annotated[uuid.UUID | None, Query()] = None,
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
    overdue: Annotated[bool, Query(description="only reports past their response time")] = False,
    limit: Annotated[int, Query(ge=1, le=queue_views.MAX_QUEUE)] = 100,
    cursor: Annotated[str | None, Query(max_length=64, description="from next_cursor")] = None,
) -> QueueOut:
    """Open reports of every staffed server (staff): most overdue first, then
    the closest to due, with the servers whose pulls are failing."""
    view = queue_views.open_queue(
        session,
        principal,
        queue_views.QueueFilter(
            server_id,
            organisation_id,
            overdue,
            limit,
            after=decode_key_cursor(cursor) if cursor else None,
        ),
    )
    return QueueOut(
        items=[
            QueueItemOut(
                report=ReportOut.model_validate(item.report),
                server_domain=item.server.domain,
                organisation_id=item.server.organisation_id,
                age_minutes=item.age_minutes,
                response_minutes=item.response_minutes,
                due_at=item.due_at,
                minutes_to_due=item.minutes_to_due,
                overdue=item.overdue,
            )
            for item in view.items
        ],
        total=view.total,
        unreachable=[
            UnreachableOut(
                server_id=u.server.id, server_domain=u.server.domain, since=u.since, error=u.error
            )
            for u in view.unreachable
        ],
        next_cursor=view.next_cursor,
    )


def _change(
    change: ReportChange, report_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> ReportOut:
    return ReportOut.model_validate(
        queue_actions.change_report(session, principal, report_id, change)
    )


@router.post("/moderation/reports/{report_id}/assign", response_model=ReportOut)
def assign(report_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ReportOut:
    """Assign the report to yourself on its server (409 without your own
    moderator access there)."""
    return _change("assign_to_self", report_id, principal, session)


@router.post("/moderation/reports/{report_id}/unassign", response_model=ReportOut)
def unassign(report_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ReportOut:
    return _change("unassign", report_id, principal, session)


@router.post("/moderation/reports/{report_id}/resolve", response_model=ReportOut)
def resolve(report_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ReportOut:
    return _change("resolve", report_id, principal, session)


@router.post("/moderation/reports/{report_id}/reopen", response_model=ReportOut)
def reopen(report_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ReportOut:
    return _change("reopen", report_id, principal, session)


@router.post("/moderation/reports/{report_id}/action", response_model=ReportOut)
def account_action(
    report_id: uuid.UUID, body: AccountActionIn, principal: PrincipalDep, session: SessionDep
) -> ReportOut:
    """Act on the reported account (none, sensitive, disable, silence,
    suspend) with a text for its owner; Mastodon resolves the report."""
    return ReportOut.model_validate(
        queue_actions.act_on_account(session, principal, report_id, body.type, body.text)
    )


@router.get("/servers/{server_id}/moderation/figures", response_model=FiguresOut)
def get_figures(
    server_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    month: Annotated[
        str | None, Query(pattern=r"^\d{4}-\d{2}$", description="YYYY-MM; this month if left out")
    ] = None,
) -> FiguresOut:
    """Reports received in a month (the organisation's time zone) and the
    median time to the first action on them."""
    result = queue_views.figures(session, principal, server_id, month)
    return FiguresOut.model_validate(result)
