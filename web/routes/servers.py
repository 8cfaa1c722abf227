"""The organisation's servers: the list, ordering one, and a server's page."""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse
from sqlmodel import Session
from starlette.responses import Response

from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.backups import service as backups
from controlplane.billing import addons
from controlplane.billing import service as plans
from controlplane.deps import SessionDep
from controlplane.identity import service as identity
from controlplane.identity.settings import IdentitySettings
from controlplane.jobs import service as jobs
from controlplane.moderation import queue_views
from controlplane.moderation import service as moderation
from controlplane.pagination import PageRequest, page_request
from controlplane.problems import HerdError
from controlplane.rollouts import service as rollouts
from controlplane.rollouts.schemas import WindowsPut
from controlplane.servers import service as servers
from controlplane.servers.models import Server
from controlplane.servers.schemas import OptionalReason, ServerOrder, StateChange
from controlplane.servers.service import ServerFilter
from controlplane.tenancy import service as tenancy
from controlplane.tenancy.models import Organisation
from web import forms, queries
from web.routes.billing import change_sso, notify, sso_choice, take_notices
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
        {
            "org": organisation,
            "plans": offered,
            "values": values,
            "errors": errors,
            "addons": addons.list_catalogue(session),
            "can_buy": Perm.billing_manage in principal.org_perms(organisation.id),
            "sso": sso_choice(session, principal, organisation.id),
        },
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
    addon: Annotated[list[str] | None, Form()] = None,
    sso: Annotated[str, Form()] = "keep",
) -> Response:
    organisation = org_context(request, session, principal, org_id)
    values = {
        "domain": domain,
        "plan": plan,
        "title": title,
        "description": description,
        "contact_email": contact_email,
        "registrations_mode": registrations_mode,
        "addons": addon or [],
        "sso": sso,
    }
    fields = {k: v for k, v in values.items() if k not in ("addons", "sso")}
    data, errors = forms.parse(
        ServerOrder, {**fields, "contact_email": forms.blank_to_none(contact_email)}
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
    wanted = _order_extras(request, session, principal, org_id, addon or [], sso)
    query = urlencode([("want", code) for code in wanted])
    return redirect(f"/servers/{view.server.id}/order" + (f"?{query}" if query else ""))


def _order_extras(
    request: Request,
    session: Session,
    principal: Principal,
    org_id: uuid.UUID,
    codes: list[str],
    sso: str,
) -> list[str]:
    """What the order form asked for beside the server. The server is ordered
    whatever becomes of these: each is tried in a savepoint and its outcome
    told on the next page. Returns the per-server add-ons, which can be
    ordered only once the server's subscription exists (after payment)."""
    catalogue = {a.code: a for a in addons.list_catalogue(session)}
    wanted = []
    if sso in ("on", "off"):
        try:
            with session.begin_nested():
                change_sso(session, principal, org_id, sso == "on")
        except HerdError as exc:
            notify(request, f"Single sign-on not changed: {exc.detail}")
    for code in dict.fromkeys(codes):
        chosen = catalogue.get(code)
        if chosen is None:
            continue
        if chosen.per == "server":
            wanted.append(code)
            continue
        try:
            with session.begin_nested():
                addons.order_for_organisation(session, principal, org_id, code)
            notify(request, f"Ordered {chosen.name}.")
        except HerdError as exc:
            notify(request, f"{chosen.name} not ordered: {exc.detail}")
    return wanted


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
    perms = principal.org_perms(server.organisation_id)
    return render(
        request,
        "server.html",
        {
            **_extras(session, principal, organisation, server),
            "backups": backups.get_backups(session, principal, server.id),
            "can_update": Perm.servers_update in perms,
            "can_see_billing": Perm.billing_read in perms,
            "notices": take_notices(request),
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


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _extras(
    session: Session, principal: Principal, organisation: Organisation, server: Server
) -> dict[str, Any]:
    """The server page's single sign-on state, maintenance windows and
    moderation add-on."""
    sso = identity.get_sso(session, principal, organisation.id)
    sso_state = next((s.state for s in sso.servers if s.server_id == server.id), "off")
    _, rows = rollouts.list_windows(session, principal, organisation.id)
    own = [w for w in rows if w.server_id == server.id]
    return {
        "sso_enabled": sso.enabled,
        "sso_state": sso_state,
        "sso_available": IdentitySettings().configured,
        # A server's own windows replace its organisation's.
        "windows": own or [w for w in rows if w.server_id is None],
        "windows_own": bool(own),
        "timezone": organisation.timezone,
        "weekdays": WEEKDAYS,
        "moderation": addons.moderation_active(session, server.id),
        "staffing": moderation.staffing(session, server),
        "moderation_figures": queue_views.figures(session, principal, server.id, None),
    }


@router.post("/servers/{server_id}/maintenance-window")
def set_window(
    request: Request,
    server_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    action: Annotated[str, Form()] = "set",
    weekday: Annotated[str, Form()] = "",
    start: Annotated[str, Form()] = "",
    duration_minutes: Annotated[str, Form()] = "",
) -> Response:
    """Give the server a weekly window of its own, or clear it to follow the
    organisation's; the organisation's other windows stay as they are."""
    server = servers.get(session, principal, server_id).server
    _, rows = rollouts.list_windows(session, principal, server.organisation_id)
    keep = [
        {
            "weekday": w.weekday,
            "start": f"{w.start_minute // 60:02d}:{w.start_minute % 60:02d}",
            "duration_minutes": w.duration_minutes,
            "server_id": w.server_id,
        }
        for w in rows
        if w.server_id != server.id
    ]
    if action != "clear":
        keep.append(
            {
                "weekday": weekday,
                "start": start,
                "duration_minutes": duration_minutes,
                "server_id": server.id,
            }
        )
    data, _ = forms.parse(WindowsPut, {"windows": keep})
    if data is None:
        notify(
            request,
            "Maintenance window not changed: give a weekday, a start time (HH:MM) "
            "and a duration in minutes.",
        )
        return redirect(f"/servers/{server_id}#window-h")
    rollouts.replace_windows(session, principal, server.organisation_id, data)
    notify(
        request,
        "Maintenance window saved."
        if action != "clear"
        else "The server follows its organisation's maintenance windows.",
    )
    return redirect(f"/servers/{server_id}#window-h")


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
