"""What every page shares: the route class that loads and saves the session,
checks CSRF and shows errors as pages; the templates; the dependencies that
give a page its principal."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from sqlmodel import col, select
from starlette.responses import RedirectResponse, Response

from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, Scope, StaffPerm
from controlplane.deps import SessionDep
from controlplane.problems import HerdError
from controlplane.servers.domains import unicode_form
from controlplane.tenancy.models import Organisation
from web import sessions
from web.auth import principal_for

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
TEMPLATES.env.filters["domain"] = unicode_form
TEMPLATES.env.filters["when"] = lambda v: v.strftime("%Y-%m-%d %H:%M UTC") if v else "—"
TEMPLATES.env.globals.update(Perm=Perm, StaffPerm=StaffPerm)

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(Exception):
    """No valid session: a page sends the person to sign in."""


class CsrfRefused(Exception):
    pass


def web_session(request: Request) -> sessions.WebSession:
    return request.state.web  # type: ignore[no-any-return]


async def _check_csrf(request: Request, web: sessions.WebSession) -> None:
    presented = request.headers.get(sessions.CSRF_HEADER)
    if presented is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            # Starlette caches the parsed form, so the handler's Form
            # parameters read the same one.
            form = await request.form()
            value = form.get(sessions.CSRF_FIELD)
            presented = value if isinstance(value, str) else None
    if not web.csrf_matches(presented):
        raise CsrfRefused


class WebRoute(APIRoute):
    """Loads the signed session before the handler and saves it after;
    refuses any state-changing request without the session's CSRF token;
    turns the services' errors into pages rather than problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def run(request: Request) -> Response:
            web = sessions.load(request)
            request.state.web = web
            try:
                if request.method not in _SAFE_METHODS:
                    await _check_csrf(request, web)
                response = await handler(request)
            except CsrfRefused:
                response = error_page(
                    request,
                    403,
                    "Form expired",
                    "This form was not sent from a Herd page of your session. "
                    "Go back, reload the page and try again.",
                )
            except SignInRequired:
                if request.method in _SAFE_METHODS:
                    target = request.url.path + (
                        f"?{request.url.query}" if request.url.query else ""
                    )
                    response = RedirectResponse(f"/sign-in?next={quote(target)}", status_code=303)
                else:
                    response = error_page(request, 401, "Signed out", "Sign in again.")
            except HerdError as exc:
                response = error_page(request, exc.status, exc.title, exc.detail)
            sessions.save(response, web)
            response.headers.setdefault("Cache-Control", "no-store")
            return response

        return run


def error_page(request: Request, status: int, title: str, detail: str) -> Response:
    return TEMPLATES.TemplateResponse(
        request,
        "error.html",
        {"title": title, "detail": detail, "status": status, **_chrome(request)},
        status_code=status,
    )


def _chrome(request: Request) -> dict[str, Any]:
    """What the layout needs on every page."""
    web: sessions.WebSession | None = getattr(request.state, "web", None)
    principal: Principal | None = getattr(request.state, "principal", None)
    return {
        "csrf_token": web.csrf_token if web is not None else "",
        "me": principal,
        "organisations": getattr(request.state, "organisations", []),
        "current_org": getattr(request.state, "current_org", None),
    }


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    return TEMPLATES.TemplateResponse(
        request, template, {**_chrome(request), **context}, status_code=status_code
    )


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


def current_principal(request: Request, session: SessionDep) -> Principal:
    principal = principal_for(session, web_session(request))
    if principal is None:
        raise SignInRequired
    # As in the API: reading needs read, anything else needs write.
    principal.require_scope(Scope.read if request.method in _SAFE_METHODS else Scope.write)
    request.state.principal = principal
    visible = list(principal.memberships)
    request.state.organisations = (
        session.exec(
            select(Organisation)
            .where(col(Organisation.id).in_(visible))
            .order_by(Organisation.name)
        ).all()
        if visible
        else []
    )
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]
WebSessionDep = Annotated[sessions.WebSession, Depends(web_session)]


def set_current_org(request: Request, organisation: Organisation) -> None:
    request.state.current_org = organisation
    web_session(request).set("org", str(organisation.id))


def parse_id(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
