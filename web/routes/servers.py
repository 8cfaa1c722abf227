"""The organisation's servers: the list, ordering one, and a server's page."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.billing import service as plans
from controlplane.deps import SessionDep
from controlplane.jobs import service as jobs
from controlplane.pagination import PageRequest, page_request
from controlplane.problems import HerdError
from controlplane.servers import service as servers
from controlplane.servers.schemas import OptionalReason, ServerOrder, StateChange
from controlplane.servers.service import ServerFilter
from controlplane.tenancy import service as tenancy
from controlplane.tenancy.models import Organisation
from web import forms, queries
from web.routing import PrincipalDep, WebRoute, redirect, render, set_current_org

router = APIRouter(route_class=WebRoute, include_in_schema=False)

STAFF_EVENTS = ("suspend", "resume", "approve", "retry")
TIMELINE_LIMIT = 200
LOG_LIMIT = 500


def org_context(
    request: Request, session: SessionDep, principal: Principal, org_id: uuid.UUID
) -> Organisation:
    organisation = tenancy.get_organisation(session, principal, org_id)
    set_current_org(request, organisation)
    return organisation


@router.get("/o/{org_id}/servers")
def server_list(
    request: Request,
    org_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    cursor: str | None = None,
) -> Response:
    organisation = org_context(request, session, principal, org_id)
    views, next_cursor = servers.list_organisation_servers(
        session, principal, org_id, ServerFilter(), page_request(cursor, None)
    )
    return render(
        request,
        "servers.html",
        {
            "org": organisation,
            "views": views,
            "next_cursor": next_cursor,
            "can_order": Perm.servers_order in principal.org_perms(org_id),
        },
    )


def _order_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    organisation: Organisation,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
) -> Response:
    offered, _ = plans.list_plans(session, principal, PageRequest(limit=100))
    return render(
        request,
        "order.html",
        {"org": organisation, "plans": offered, "values": values, "errors": errors},
        status_code=status,
    )


@router.get("/o/{org_id}/servers/new")
def order_form(
    request: Request, org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    organisation = org_context(request, session, principal, org_id)
    principal.require(org_id, Perm.servers_order)
    return _order_page(request, session, principal, organisation, {}, {})


@router.get("/o/{org_id}/servers/check-domain")
def check_domain(
    org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, domain: str = ""
) -> Response:
    principal.require(org_id, Perm.servers_order)
    ok, message, ascii_form = queries.check_domain(session, domain[:300])
    return JSONResponse({"ok": ok, "message": message, "domain": ascii_form})


@router.post("/o/{org_id}/servers")
def order(
    request: Request,
    org_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    domain: Annotated[str, Form()] = "",
    plan: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    contact_email: Annotated[str, Form()] = "",
    registrations_mode: Annotated[str, Form()] = "approved",
) -> Response:
    organisation = org_context(request, session, principal, org_id)
    values = {
        "domain": domain,
        "plan": plan,
        "title": title,
        "description": description,
        "contact_email": contact_email,
        "registrations_mode": registrations_mode,
    }
    data, errors = forms.parse(
        ServerOrder, {**values, "contact_email": forms.blank_to_none(contact_email)}
    )
    if data is None:
        return _order_page(request, session, principal, organisation, values, errors, 422)
    try:
        view = servers.order(session, principal, org_id, data)
    except HerdError as exc:
        if exc.status in (403, 404):
            raise
        field = str(exc.extra.get("field", "domain"))
        return _order_page(
            request, session, principal, organisation, values, {field: exc.detail}, exc.status
        )
    return redirect(f"/servers/{view.server.id}")


@router.get("/servers/{server_id}")
def server_page(
    request: Request, server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    view = servers.get(session, principal, server_id)
    server = view.server
    organisation = tenancy.get_organisation(session, principal, server.organisation_id)
    if server.organisation_id in principal.memberships:
        set_current_org(request, organisation)
    timeline, _ = servers.list_events(
        session, principal, server.id, PageRequest(limit=TIMELINE_LIMIT)
    )
    job = queries.latest_job(session, server.id)
    log = (
        jobs.list_events(session, principal, job.id, PageRequest(limit=LOG_LIMIT))[0] if job else []
    )
    is_staff_operator = _has_staff(principal, StaffPerm.servers_suspend)
    return render(
        request,
        "server.html",
        {
            "org": organisation,
            "view": view,
            "server": server,
            "timeline": timeline,
            "job": job,
            "log": log,
            "staff_actions": STAFF_EVENTS if is_staff_operator else (),
            "host_name": queries.host_names(session, [server.host_id]).get(server.host_id)  # type: ignore[arg-type]
            if principal.is_staff
            else None,
        },
    )


def _has_staff(principal: Principal, perm: StaffPerm) -> bool:
    try:
        principal.require_staff(perm)
    except HerdError:
        return False
    return True


@router.post("/servers/{server_id}/staff/{event}")
def staff_action(
    request: Request,
    server_id: uuid.UUID,
    event: str,
    principal: PrincipalDep,
    session: SessionDep,
    reason: Annotated[str, Form()] = "",
) -> Response:
    if event not in STAFF_EVENTS:
        return render(request, "error.html", {"title": "Not found", "detail": event}, 404)
    # Suspending needs a reason, as in the API; the others take one if given.
    schema = StateChange if event == "suspend" else OptionalReason
    data, errors = forms.parse(schema, {"reason": forms.blank_to_none(reason)})
    if data is None:
        return render(
            request,
            "error.html",
            {"title": "Reason needed", "detail": errors.get("reason", "give a reason")},
            422,
        )
    servers.staff_transition(session, principal, server_id, event, data.reason)
    return redirect(f"/servers/{server_id}")
