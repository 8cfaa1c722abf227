"""Finishing an order (payment, add-ons, single sign-on), ordering and
cancelling add-ons, and the organisation's invoices."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlmodel import Session, select
from starlette.responses import Response

import controlplane.billing.work  # noqa: F401  (sends add-on orders after commit)
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm
from controlplane.billing import accounts, addons
from controlplane.billing.models import BillingSubscription
from controlplane.billing.settings import get_billing_settings
from controlplane.deps import SessionDep
from controlplane.identity import service as identity
from controlplane.identity.settings import IdentitySettings
from controlplane.pagination import PageRequest, page_request
from controlplane.problems import HerdError
from controlplane.servers import service as servers
from controlplane.tenancy import service as tenancy
from web.routing import PrincipalDep, WebRoute, redirect, render, set_current_org, web_session

router = APIRouter(route_class=WebRoute, include_in_schema=False)

NOTICES = "notices"


def notify(request: Request, text: str) -> None:
    """A line shown once on the next page (after the redirect)."""
    web = web_session(request)
    web.set(NOTICES, [*(web.get(NOTICES) or []), text][-5:])


def take_notices(request: Request) -> list[str]:
    return list(web_session(request).pop(NOTICES) or [])


def sso_choice(session: Session, principal: Principal, org_id: uuid.UUID) -> dict[str, Any]:
    """What the pages show of the organisation's single sign-on: whether it
    is on, whether this Herd can offer it at all, and whether the caller may
    change it."""
    view = identity.get_sso(session, principal, org_id)
    return {
        "view": view,
        "available": IdentitySettings().configured,
        "can_change": Perm.org_update in principal.org_perms(org_id),
    }


def change_sso(session: Session, principal: Principal, org_id: uuid.UUID, enabled: bool) -> None:
    """Switch SSO on or off, keeping every other choice as it is."""
    now = identity.get_sso(session, principal, org_id)
    if now.enabled == enabled:
        return
    identity.update_sso(
        session,
        principal,
        org_id,
        identity.SsoChange(
            enabled=enabled,
            display_name=now.display_name,
            login_theme=now.login_theme,
            omniauth_only=now.omniauth_only,
            one_click_sso_login=now.one_click_sso_login and now.omniauth_only,
            upstream=now.upstream,
            upstream_client_secret=None,
        ),
    )


def payment(session: Session, principal: Principal, server_id: uuid.UUID) -> dict[str, Any]:
    """How the server is paid for, as the order's last step shows it."""
    view = servers.get(session, principal, server_id)
    org_id = view.server.organisation_id
    if Perm.billing_read not in principal.org_perms(org_id):
        return {"shown": False}
    if not get_billing_settings().enabled:
        return {"shown": True, "billing": False}
    account = accounts.get_billing(session, principal, org_id).account
    sub = session.exec(
        select(BillingSubscription).where(BillingSubscription.server_id == server_id)
    ).first()
    return {
        "shown": True,
        "billing": True,
        "invoiced": account.collection_method == "send_invoice",
        "days_until_due": account.days_until_due,
        "subscription": sub,
        "checkout_url": sub.checkout_url if sub and not sub.paid_at else None,
    }


def addon_rows(session: Session, principal: Principal, org_id: uuid.UUID) -> dict[str, Any]:
    """The catalogue, and which add-ons are ordered for what."""
    if Perm.billing_read not in principal.org_perms(org_id):
        return {"catalogue": addons.list_catalogue(session), "orders": {}, "can_order": False}
    orders, _ = addons.list_for_organisation(session, principal, org_id, PageRequest(limit=500))
    live = {(code, order.server_id): order for order, code in orders if order.status in addons.LIVE}
    return {
        "catalogue": addons.list_catalogue(session),
        "orders": live,
        "can_order": Perm.billing_manage in principal.org_perms(org_id),
    }


@router.get("/servers/{server_id}/order")
def finish_order(
    request: Request, server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    view = servers.get(session, principal, server_id)
    org = tenancy.get_organisation(session, principal, view.server.organisation_id)
    set_current_org(request, org)
    return render(
        request,
        "finish_order.html",
        {
            "org": org,
            "server": view.server,
            "notices": take_notices(request),
            "payment": payment(session, principal, server_id),
            "addons": addon_rows(session, principal, org.id),
            "sso": sso_choice(session, principal, org.id),
            "wanted": request.query_params.getlist("want"),
        },
    )


def _back(request: Request, fallback: str) -> str:
    target = request.query_params.get("next", "")
    # Only a path on this site: never an open redirect.
    return target if target.startswith("/") and not target.startswith("//") else fallback


@router.post("/servers/{server_id}/addons/{code}")
def order_server_addon(
    request: Request, server_id: uuid.UUID, code: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    return _addon_action(
        request,
        session,
        lambda: addons.order_for_server(session, principal, server_id, code),
        f"Ordered {code}.",
        f"/servers/{server_id}/order",
    )


@router.post("/servers/{server_id}/addons/{code}/cancel")
def cancel_server_addon(
    request: Request, server_id: uuid.UUID, code: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    return _addon_action(
        request,
        session,
        lambda: addons.cancel_for_server(session, principal, server_id, code),
        f"Cancelled {code}.",
        f"/servers/{server_id}/order",
    )


@router.post("/o/{org_id}/addons/{code}")
def order_org_addon(
    request: Request, org_id: uuid.UUID, code: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    return _addon_action(
        request,
        session,
        lambda: addons.order_for_organisation(session, principal, org_id, code),
        f"Ordered {code}.",
        f"/o/{org_id}/invoices",
    )


@router.post("/o/{org_id}/addons/{code}/cancel")
def cancel_org_addon(
    request: Request, org_id: uuid.UUID, code: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    return _addon_action(
        request,
        session,
        lambda: addons.cancel_for_organisation(session, principal, org_id, code),
        f"Cancelled {code}.",
        f"/o/{org_id}/invoices",
    )


def _addon_action(
    request: Request, session: Session, action: Any, done: str, fallback: str
) -> Response:
    try:
        action()
    except HerdError as exc:
        # A missing server or organisation, or a role that may not: the
        # error page, as elsewhere. A missing add-on or a refused order
        # (no subscription yet, billing off) is told on the page.
        if exc.status == 403 or (exc.status == 404 and "add-on" not in exc.detail):
            raise
        session.rollback()
        notify(request, f"Not done: {exc.detail}")
    else:
        notify(request, done)
    return redirect(_back(request, fallback))


@router.post("/o/{org_id}/sso")
def set_sso(
    request: Request,
    org_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    enabled: Annotated[str, Form()] = "off",
) -> Response:
    try:
        change_sso(session, principal, org_id, enabled == "on")
    except HerdError as exc:
        if exc.status in (403, 404):
            raise
        session.rollback()
        notify(request, f"Single sign-on not changed: {exc.detail}")
    else:
        notify(request, f"Single sign-on is {'on' if enabled == 'on' else 'off'}.")
    return redirect(_back(request, f"/o/{org_id}/servers"))


@router.get("/o/{org_id}/invoices")
def invoices(
    request: Request,
    org_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    cursor: str | None = None,
) -> Response:
    org = tenancy.get_organisation(session, principal, org_id)
    set_current_org(request, org)
    rows, next_cursor = accounts.list_invoices(
        session, principal, org_id, page_request(cursor, None)
    )
    billing = accounts.get_billing(session, principal, org_id)
    return render(
        request,
        "invoices.html",
        {
            "org": org,
            "invoices": rows,
            "next_cursor": next_cursor,
            "account": billing.account,
            "suspend_after": billing.suspend_after,
            "notices": take_notices(request),
            "addons": addon_rows(session, principal, org_id),
        },
    )
