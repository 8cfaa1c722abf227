"""A server's branding over HTTP. Images are uploaded as the raw request
body with their Content-Type; both refusals and changes answer like the
rest of the API."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from controlplane.branding import service
from controlplane.branding.checks import IMAGE_TYPES
from controlplane.branding.schemas import BrandingIn, BrandingOut, ImageOut
from controlplane.deps import API_PREFIX, PrincipalDep, SessionDep

router = APIRouter(prefix=API_PREFIX, tags=["branding"])

_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES},
    }
}


def branding_out(view: service.BrandingView) -> BrandingOut:
    row = view.branding

    def image(kind: str) -> ImageOut | None:
        sha, content_type = getattr(row, f"{kind}_sha256"), getattr(row, f"{kind}_type")
        return ImageOut(sha256=sha, content_type=content_type) if sha and content_type else None

    return BrandingOut(
        server_id=view.server.id,
        primary_color=row.primary_color,
        accent_color=row.accent_color,
        background_color=row.background_color,
        text_color=row.text_color,
        custom_css=row.custom_css,
        title=view.server.title,
        description=view.server.description,
        logo=image("logo"),
        background=image("background"),
        job_id=view.job.id if view.job else None,
    )


@router.get("/servers/{server_id}/branding", response_model=BrandingOut)
def get_branding(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> BrandingOut:
    return branding_out(service.get_branding(session, principal, server_id))


@router.put("/servers/{server_id}/branding", response_model=BrandingOut)
def put_branding(
    server_id: uuid.UUID, body: BrandingIn, principal: PrincipalDep, session: SessionDep
) -> BrandingOut:
    """Replace the colours and custom CSS, and change the title or
    description if given. An active server gets a `brand` job (`job_id`);
    one not running yet is branded when it is provisioned."""
    change = service.BrandingChange(**body.model_dump())
    return branding_out(service.update_branding(session, principal, server_id, change))


async def _upload(
    kind: service.ImageKind,
    server_id: uuid.UUID,
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
) -> BrandingOut:
    data = await request.body()
    # The database work is synchronous: keep it off the event loop.
    view = await run_in_threadpool(
        service.set_image,
        session,
        principal,
        server_id,
        kind,
        request.headers.get("content-type"),
        data,
    )
    return branding_out(view)


@router.put(
    "/servers/{server_id}/branding/logo", response_model=BrandingOut, openapi_extra=_IMAGE_BODY
)
async def put_logo(
    server_id: uuid.UUID, request: Request, principal: PrincipalDep, session: SessionDep
) -> BrandingOut:
    """Upload the logo: PNG, JPEG or WebP, checked by its bytes; 415 for any
    other type (SVG included), 413 over HERD_BRANDING_IMAGE_MAX_BYTES."""
    return await _upload("logo", server_id, request, principal, session)


@router.put(
    "/servers/{server_id}/branding/background",
    response_model=BrandingOut,
    openapi_extra=_IMAGE_BODY,
)
async def put_background(
    server_id: uuid.UUID, request: Request, principal: PrincipalDep, session: SessionDep
) -> BrandingOut:
    """Upload the background image, with the same checks as the logo."""
    return await _upload("background", server_id, request, principal, session)


@router.delete("/servers/{server_id}/branding/logo", response_model=BrandingOut)
def delete_logo(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> BrandingOut:
    """Remove the logo: an active server gets a `brand` job that takes it
    off the server, which then shows Mastodon's default. Removing a logo
    that is not set changes nothing."""
    return branding_out(service.remove_image(session, principal, server_id, "logo"))


@router.delete("/servers/{server_id}/branding/background", response_model=BrandingOut)
def delete_background(
    server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> BrandingOut:
    """Remove the background image, as the logo is removed."""
    return branding_out(service.remove_image(session, principal, server_id, "background"))
