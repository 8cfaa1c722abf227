"""Signing in and out, the landing page and the organisation switcher."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy import func
from sqlmodel import select
from starlette.responses import Response

from controlplane.deps import SessionDep
from controlplane.problems import Unauthenticated
from controlplane.tenancy.models import User
from controlplane.tokens import service as tokens
from web import oidc
from web.routing import PrincipalDep, WebRoute, WebSessionDep, parse_id, redirect, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)


def _safe_next(target: str | None) -> str:
    # Only a path on this site: never an open redirect to somewhere else.
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def _sign_in_page(
    request: Request, next_url: str, error: str | None, status: int = 200
) -> Response:
    return render(
        request,
        "signin.html",
        {"next": next_url, "error": error, "oidc": oidc.configured()},
        status_code=status,
    )


@router.get("/sign-in")
def sign_in(request: Request, next: str | None = None) -> Response:
    return _sign_in_page(request, _safe_next(next), None)


@router.post("/sign-in/token")
def sign_in_with_token(
    request: Request,
    session: SessionDep,
    web: WebSessionDep,
    token: Annotated[str, Form(max_length=200)],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    if oidc.configured():
        return _sign_in_page(request, "/", "Sign in through your identity provider.", 400)
    try:
        principal = tokens.authenticate(session, token.strip())
    except Unauthenticated as exc:
        return _sign_in_page(request, _safe_next(next), exc.detail, 401)
    web.start_over(uid=str(principal.user_id), tid=str(principal.token_id))
    return redirect(_safe_next(next))


@router.get("/sign-in/oidc")
def sign_in_with_oidc(request: Request, web: WebSessionDep, next: str | None = None) -> Response:
    if not oidc.configured():
        return _sign_in_page(
            request, "/", "Sign-in through an identity provider is not set up.", 404
        )
    try:
        url, pending = oidc.begin(oidc.provider())
    except oidc.OidcError as exc:
        return _sign_in_page(request, _safe_next(next), str(exc), 502)
    web.set("oidc", {**pending, "next": _safe_next(next)})
    return redirect(url)


@router.get(oidc.CALLBACK_PATH)
def oidc_callback(
    request: Request,
    session: SessionDep,
    web: WebSessionDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    pending = web.pop("oidc") or {}
    next_url = _safe_next(pending.get("next"))
    if error or not code or not state:
        return _sign_in_page(request, next_url, "The identity provider did not sign you in.", 401)
    try:
        email, _name = oidc.finish(oidc.provider(), pending, state, code)
    except oidc.OidcError as exc:
        return _sign_in_page(request, next_url, str(exc), 401)
    user = session.exec(select(User).where(func.lower(User.email) == email.lower())).first()
    if user is None or not user.is_active:
        return _sign_in_page(
            request,
            next_url,
            f"There is no Herd account for {email}. Ask your organisation for an invitation.",
            403,
        )
    web.start_over(uid=str(user.id))
    return redirect(next_url)


@router.post("/sign-out")
def sign_out(web: WebSessionDep) -> Response:
    web.start_over()
    return redirect("/sign-in")


@router.get("/")
def home(request: Request, principal: PrincipalDep, web: WebSessionDep) -> Response:
    chosen = web.get("org")
    if principal.memberships:
        org = chosen if chosen in {str(o) for o in principal.memberships} else None
        return redirect(f"/o/{org or next(iter(principal.memberships))}/servers")
    if principal.is_staff:
        return redirect("/staff/fleet")
    return render(request, "empty.html", {})


@router.get("/switch")
def switch(principal: PrincipalDep, org: str = "") -> Response:
    chosen = parse_id(org)
    if chosen is None or not principal.can_see(chosen):
        return redirect("/")
    return redirect(f"/o/{chosen}/servers")
