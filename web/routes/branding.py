"""A server's branding editor: colours, texts, custom CSS and images, with a
live preview (web/static/herd.js) of a Mastodon-like page."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm
from controlplane.branding import checks
from controlplane.branding import service as branding
from controlplane.deps import SessionDep
from controlplane.problems import HerdError, NotFound
from controlplane.settings import get_settings
from controlplane.tenancy import service as tenancy
from web.routing import PrincipalDep, WebRoute, redirect, render, set_current_org

router = APIRouter(route_class=WebRoute, include_in_schema=False)

FIELDS = ("primary_color", "accent_color", "background_color", "text_color")
# What the preview shows for an empty colour: the role's defaults
# (templates/home/mastodon/live/public/herd-branding.css.j2).
DEFAULTS = {
    "primary_color": "#6364ff",
    "accent_color": "#6364ff",
    "background_color": "#ffffff",
    "text_color": "#1a1a1a",
}


def _page(
    request: Request,
    view: branding.BrandingView,
    can_edit: bool,
    values: dict[str, str],
    errors: dict[str, str],
    status: int = 200,
    saved: bool = False,
) -> Response:
    settings = get_settings()
    return render(
        request,
        "branding.html",
        {
            "server": view.server,
            "view": view,
            "values": values,
            "errors": errors,
            "defaults": DEFAULTS,
            # Only a valid colour reaches the style attribute.
            "preview": {
                name: value if checks.COLOUR.match(value := values.get(name, "")) else default
                for name, default in DEFAULTS.items()
            },
            "can_edit": can_edit,
            "saved": saved,
            "image_types": ",".join(checks.IMAGE_TYPES),
            "image_max_kib": settings.branding_image_max_bytes // 1024,
            "css_max": settings.branding_css_max_bytes,
        },
        status_code=status,
    )


def _values(view: branding.BrandingView) -> dict[str, str]:
    row = view.branding
    return {
        **{name: getattr(row, name) for name in FIELDS},
        "custom_css": row.custom_css,
        "title": view.server.title,
        "description": view.server.description,
    }


def _context(
    request: Request, session: Session, principal: Principal, server_id: uuid.UUID
) -> tuple[branding.BrandingView, bool]:
    view = branding.get_branding(session, principal, server_id)
    if view.server.organisation_id in principal.memberships:
        set_current_org(
            request, tenancy.get_organisation(session, principal, view.server.organisation_id)
        )
    can_edit = Perm.servers_update in principal.org_perms(view.server.organisation_id)
    return view, can_edit


@router.get("/servers/{server_id}/branding")
def branding_page(
    request: Request,
    server_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    saved: bool = False,
) -> Response:
    view, can_edit = _context(request, session, principal, server_id)
    return _page(request, view, can_edit, _values(view), {}, saved=saved)


async def _read(upload: UploadFile | None, limit: int) -> tuple[str | None, bytes] | None:
    if upload is None or not upload.filename:
        return None  # nothing chosen: keep the image there is
    # One byte past the limit is enough to refuse it.
    return upload.content_type, await upload.read(limit + 1)


@router.post("/servers/{server_id}/branding")
async def save_branding(
    request: Request,
    server_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    primary_color: Annotated[str, Form()] = "",
    accent_color: Annotated[str, Form()] = "",
    background_color: Annotated[str, Form()] = "",
    text_color: Annotated[str, Form()] = "",
    custom_css: Annotated[str, Form()] = "",
    title: Annotated[str, Form()] = "",
    description: Annotated[str, Form()] = "",
    logo: Annotated[UploadFile | None, File()] = None,
    background: Annotated[UploadFile | None, File()] = None,
) -> Response:
    limit = get_settings().branding_image_max_bytes
    uploads = {"logo": await _read(logo, limit), "background": await _read(background, limit)}
    values = {
        "primary_color": primary_color.strip(),
        "accent_color": accent_color.strip(),
        "background_color": background_color.strip(),
        "text_color": text_color.strip(),
        "custom_css": custom_css.replace("\r\n", "\n"),
        "title": title.strip(),
        "description": description.strip(),
    }
    return await run_in_threadpool(
        _save, request, server_id, principal, session, values, uploads, limit
    )


def _save(
    request: Request,
    server_id: uuid.UUID,
    principal: Principal,
    session: Session,
    values: dict[str, str],
    uploads: dict[str, tuple[str | None, bytes] | None],
    limit: int,
) -> Response:
    view, can_edit = _context(request, session, principal, server_id)
    errors: dict[str, str] = {}
    # Every image is checked before anything is written, so a refused
    # background does not leave a new logo behind.
    for kind, upload in uploads.items():
        if upload is not None:
            try:
                checks.image(upload[0], upload[1], limit)
            except HerdError as exc:
                errors[kind] = exc.detail
    if not values["title"]:
        errors["title"] = "a site title is needed"
    if errors:
        return _page(request, view, can_edit, values, errors, 422)
    try:
        branding.update_branding(
            session,
            principal,
            server_id,
            branding.BrandingChange(
                **{k: values[k] for k in (*FIELDS, "custom_css", "title", "description")}
            ),
        )
        for kind, upload in uploads.items():
            if upload is not None:
                branding.set_image(session, principal, server_id, kind, upload[0], upload[1])  # type: ignore[arg-type]
    except HerdError as exc:
        if exc.status in (403, 404):
            raise
        session.rollback()
        field = str(exc.extra.get("field", "form"))
        view, can_edit = _context(request, session, principal, server_id)
        return _page(request, view, can_edit, values, {field: exc.detail}, exc.status)
    return redirect(f"/servers/{server_id}/branding?saved=1")


@router.post("/servers/{server_id}/branding/{kind}/remove")
def remove_image(
    server_id: uuid.UUID, kind: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    if kind not in branding.IMAGE_KINDS:
        raise NotFound("no such image")
    branding.remove_image(session, principal, server_id, kind)  # type: ignore[arg-type]
    return redirect(f"/servers/{server_id}/branding?saved=1")


@router.get("/servers/{server_id}/branding/{kind}")
def branding_image(
    server_id: uuid.UUID, kind: str, principal: PrincipalDep, session: SessionDep
) -> Response:
    if kind not in branding.IMAGE_KINDS:
        raise NotFound("no such image")
    path, content_type = branding.image_file(session, principal, server_id, kind)  # type: ignore[arg-type]
    response = FileResponse(path, media_type=content_type)
    # The address carries the digest (?v=), so the bytes behind it never change.
    response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
