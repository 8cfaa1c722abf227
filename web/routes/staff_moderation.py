"""The console's fleet moderation queue: the open reports of every staffed
server by urgency, and staff acting on one (assign, resolve, reopen, an
action on the reported account) through the same services as the API."""

from __future__ import annotations

import uuid
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Form, Query, Request
from sqlmodel import Session
from starlette.responses import Response

from controlplane.deps import SessionDep
from controlplane.moderation import access, queue_actions, queue_views
from controlplane.moderation.mastodon_admin import ReportChange
from controlplane.moderation.queue_schemas import AccountActionIn
from controlplane.moderation.reports import ModerationReport
from controlplane.pagination import decode_key_cursor
from controlplane.problems import NotFound
from controlplane.servers.domains import unicode_form
from controlplane.servers.models import Server
from web import forms, queries
from web.routes.billing import notify, take_notices
from web.routing import PrincipalDep, WebRoute, parse_id, redirect, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)

QUEUE = "/staff/moderation"
# What each account action does, as the select offers it and the notice says it.
ACTIONS = {
    "none": "no action on the account",
    "sensitive": "media marked sensitive",
    "disable": "login disabled",
    "silence": "account limited (silenced)",
    "suspend": "account suspended",
}
# The filters a form may carry back to the queue; anything else is dropped,
# so the redirect can only ever land on the queue itself.
_FILTERS = ("server", "organisation", "overdue")


def duration(minutes: int) -> str:
    """Minutes as a person reads them: 45 min, 3 h 05 min, 2 d 4 h."""
    minutes = abs(minutes)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {rest:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"


def _back(query: str, resolved: uuid.UUID | None = None) -> str:
    kept = {k: v[0] for k, v in parse_qs(query).items() if k in _FILTERS and v and v[0]}
    if resolved is not None:
        kept["resolved"] = str(resolved)
    return f"{QUEUE}?{urlencode(kept)}" if kept else QUEUE


def _label(session: Session, row: ModerationReport) -> str:
    server = session.get(Server, row.server_id)
    return f"Report {row.remote_id} on {unicode_form(server.domain) if server else '?'}"


@router.get(QUEUE)
def moderation_queue(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    server: str = "",
    organisation: str = "",
    overdue: str = "",
    resolved: str = "",
    cursor: str = "",
    limit: Annotated[int, Query(ge=1, le=queue_views.MAX_QUEUE)] = 100,
) -> Response:
    overdue_only = overdue in ("1", "true", "on")
    view = queue_views.open_queue(
        session,
        principal,
        queue_views.QueueFilter(
            server_id=parse_id(server),
            organisation_id=parse_id(organisation),
            overdue_only=overdue_only,
            limit=limit,
            after=decode_key_cursor(cursor) if cursor else None,
        ),
    )
    # Every staffed server, not only those with reports, so a filter can be
    # set to a quiet server; open_queue has already checked who is asking.
    staffed = sorted(
        (s for s, _ in access.staffed_servers(session)), key=lambda s: unicode_form(s.domain)
    )
    org_names = queries.organisation_names(session, (s.organisation_id for s in staffed))
    # A report just resolved here (by hand or by an account action) can be
    # reopened from the page, since it has left the list.
    just_resolved = None
    resolved_id = parse_id(resolved)
    if resolved_id is not None:
        row = session.get(ModerationReport, resolved_id)
        if row is not None and row.action_taken:
            just_resolved = {"id": row.id, "label": _label(session, row)}
    chosen = {k: v for k, v in (("server", server), ("organisation", organisation)) if v} | (
        {"overdue": "1"} if overdue_only else {}
    )
    query = urlencode(chosen)
    return render(
        request,
        "staff/moderation.html",
        {
            "view": view,
            "servers": staffed,
            "org_names": org_names,
            "org_choices": sorted(org_names.items(), key=lambda item: item[1].lower()),
            "filters": {"server": server, "organisation": organisation, "overdue": overdue_only},
            "back": query,
            "later_page": bool(cursor),
            # The next page keeps the filters and the page size.
            "pager_query": "&" + urlencode(chosen | {"limit": str(limit)}),
            "actions": ACTIONS,
            "duration": duration,
            "just_resolved": just_resolved,
            "notices": take_notices(request),
        },
    )


# The report changes the page's buttons post to: path word -> the change and
# how the notice says it.
CHANGES: dict[str, tuple[ReportChange, str]] = {
    "assign": ("assign_to_self", "assigned to you"),
    "unassign": ("unassign", "unassigned"),
    "resolve": ("resolve", "resolved"),
    "reopen": ("reopen", "reopened"),
}


@router.post(QUEUE + "/{report_id}/action")
def account_action(
    request: Request,
    report_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    kind: Annotated[str, Form()] = "none",
    text: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    data, errors = forms.parse(AccountActionIn, {"type": kind, "text": text})
    if data is None:
        detail = "; ".join(f"{field}: {message}" for field, message in errors.items())
        return render(
            request, "error.html", {"title": "Nothing done to the account", "detail": detail}, 422
        )
    row = queue_actions.act_on_account(session, principal, report_id, data.type, data.text)
    notify(request, f"{_label(session, row)} ({row.target_acct}): {ACTIONS[data.type]}.")
    return redirect(_back(back, row.id if row.action_taken else None))


# After /action, so that word is never taken for a report change.
@router.post(QUEUE + "/{report_id}/{change}")
def change_report(
    request: Request,
    report_id: uuid.UUID,
    change: str,
    principal: PrincipalDep,
    session: SessionDep,
    back: Annotated[str, Form()] = "",
) -> Response:
    if change not in CHANGES:
        raise NotFound("no such change to a report")
    report_change, done = CHANGES[change]
    row = queue_actions.change_report(session, principal, report_id, report_change)
    notify(request, f"{_label(session, row)} {done}.")
    return redirect(_back(back, row.id if row.action_taken else None))
