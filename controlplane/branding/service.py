"""Reading and changing a server's branding, and what the `brand` job and
the provisioning run give the mastodon_branding role.

A change is recorded, then an active server gets a `brand` job that runs
playbooks/brand.yml; a server not running yet gets its branding from the
provisioning run, which runs brand.yml too."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlmodel import Session

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm
from controlplane.branding import checks, images
from controlplane.branding.models import ServerBranding
from controlplane.jobs import service as jobs
from controlplane.jobs.models import Job
from controlplane.problems import InvalidTransition, NotFound
from controlplane.servers import service as servers
from controlplane.servers.lifecycle import EDITABLE_STATES, ServerState
from controlplane.servers.models import Server
from controlplane.servers.schemas import ServerUpdate
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow

BRAND_JOB = "brand"
COLOURS = ("primary_color", "accent_color", "background_color", "text_color")
ImageKind = Literal["logo", "background"]
IMAGE_KINDS: tuple[ImageKind, ...] = ("logo", "background")
# Which Mastodon site setting each image becomes (the role's
# mastodon_branding_image_files keys): the logo is the mascot the web app
# shows, the background the server's thumbnail, the banner of its about
# and sign-up pages.
SITE_SETTING = {"logo": "mascot", "background": "thumbnail"}


@dataclass(frozen=True)
class BrandingChange:
    primary_color: str = ""
    accent_color: str = ""
    background_color: str = ""
    text_color: str = ""
    custom_css: str = ""
    # None keeps the server's title or description.
    title: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class BrandingView:
    server: Server
    branding: ServerBranding
    job: Job | None

    def image_url(self, kind: ImageKind) -> str | None:
        sha = getattr(self.branding, f"{kind}_sha256")
        # The digest in the address lets a browser cache each image for good.
        return f"/servers/{self.server.id}/branding/{kind}?v={sha[:16]}" if sha else None


def _server(session: Session, principal: Principal, server_id: uuid.UUID, perm: Perm) -> Server:
    server = session.get(Server, server_id)
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("server not found")
    principal.require(server.organisation_id, perm, "server")
    if perm == Perm.servers_update and server.state not in EDITABLE_STATES:
        raise InvalidTransition(
            f"a server that is {server.state} can no longer be changed", state=server.state
        )
    return server


def _row(session: Session, server_id: uuid.UUID) -> ServerBranding:
    return session.get(ServerBranding, server_id) or ServerBranding(server_id=server_id)


def get_branding(session: Session, principal: Principal, server_id: uuid.UUID) -> BrandingView:
    server = _server(session, principal, server_id, Perm.servers_read)
    return BrandingView(
        server, _row(session, server.id), jobs.active_job(session, server.id, BRAND_JOB)
    )


def update_branding(
    session: Session, principal: Principal, server_id: uuid.UUID, change: BrandingChange
) -> BrandingView:
    """Replace the colours and custom CSS (and the title or description when
    given). Every field is checked before anything is written."""
    server = _server(session, principal, server_id, Perm.servers_update)
    colours = {name: checks.colour(name, getattr(change, name)) for name in COLOURS}
    css = checks.custom_css(change.custom_css, get_settings().branding_css_max_bytes)
    texts = {
        name: value
        for name, value in (("title", change.title), ("description", change.description))
        if value is not None and value != getattr(server, name)
    }
    if texts:
        # The server's own update: its validation, state rule and audit entry.
        servers.update_settings(session, principal, server.id, ServerUpdate(**texts))
    row = _row(session, server.id)
    changed = sorted(
        [name for name, value in colours.items() if getattr(row, name) != value]
        + (["custom_css"] if row.custom_css != css else [])
        + list(texts)
    )
    for name, value in colours.items():
        setattr(row, name, value)
    row.custom_css = css
    return _save(session, principal, server, row, changed)


def set_image(
    session: Session,
    principal: Principal,
    server_id: uuid.UUID,
    kind: ImageKind,
    content_type: str | None,
    data: bytes,
) -> BrandingView:
    """Store an uploaded logo or background once its bytes are checked; a
    refused upload leaves no file and no change behind."""
    server = _server(session, principal, server_id, Perm.servers_update)
    checked = checks.image(content_type, data, get_settings().branding_image_max_bytes)
    sha256 = images.store(data, checked)
    row = _row(session, server.id)
    changed = [kind] if getattr(row, f"{kind}_sha256") != sha256 else []
    setattr(row, f"{kind}_sha256", sha256)
    setattr(row, f"{kind}_type", checked)
    return _save(session, principal, server, row, changed)


def remove_image(
    session: Session, principal: Principal, server_id: uuid.UUID, kind: ImageKind
) -> BrandingView:
    """Stop using the logo or background: the next brand run removes it from
    the server, which then shows Mastodon's own. Removing one that is not
    set changes nothing. The file stays in Herd's store, where another
    server may use the same bytes."""
    server = _server(session, principal, server_id, Perm.servers_update)
    row = _row(session, server.id)
    changed = [kind] if getattr(row, f"{kind}_sha256") else []
    setattr(row, f"{kind}_sha256", None)
    setattr(row, f"{kind}_type", None)
    return _save(session, principal, server, row, changed, removed=changed)


def _save(
    session: Session,
    principal: Principal,
    server: Server,
    row: ServerBranding,
    changed: list[str],
    removed: list[str] | None = None,
) -> BrandingView:
    job = jobs.active_job(session, server.id, BRAND_JOB)
    if not changed:
        # Sending the same branding again starts nothing.
        return BrandingView(server, row, job)
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    job = _start_job(session, server, job)
    audit.record(
        session,
        principal,
        "server.branding_update",
        "server",
        server.id,
        server.organisation_id,
        {"fields": changed, "job": str(job.id) if job else None}
        | ({"removed": removed} if removed else {}),
    )
    return BrandingView(server, row, job)


def _start_job(session: Session, server: Server, pending: Job | None) -> Job | None:
    from provisioning.registry import pipelines

    if server.state != ServerState.active or server.host_id is None:
        # Not running: the provisioning or resume run applies it.
        return None
    if pending is not None and pending.started_at is None:
        return pending  # not started: it will read the newest branding
    return jobs.create_job(session, BRAND_JOB, pipelines()[BRAND_JOB].step_names, server.id)


def image_file(
    session: Session, principal: Principal, server_id: uuid.UUID, kind: ImageKind
) -> tuple[Path, str]:
    server = _server(session, principal, server_id, Perm.servers_read)
    row = session.get(ServerBranding, server.id)
    sha, content_type = (
        (getattr(row, f"{kind}_sha256"), getattr(row, f"{kind}_type")) if row else (None, None)
    )
    if not sha or not content_type:
        raise NotFound(f"the server has no {kind}")
    return images.path_of(sha, content_type), content_type


def branding_variables(session: Session, server: Server) -> dict[str, Any]:
    """The mastodon_branding role's inputs (its defaults/main.yml): colours,
    custom CSS, and the image files on this machine, the Ansible controller."""
    row = session.get(ServerBranding, server.id)
    if row is None:
        return {}
    files = {
        SITE_SETTING[kind]: str(images.path_of(sha, content_type))
        for kind in IMAGE_KINDS
        if (sha := getattr(row, f"{kind}_sha256"))
        and (content_type := getattr(row, f"{kind}_type"))
    }
    return {
        "mastodon_branding_primary_color": row.primary_color,
        "mastodon_branding_accent_color": row.accent_color,
        "mastodon_branding_background_color": row.background_color,
        "mastodon_branding_text_color": row.text_color,
        "mastodon_branding_custom_css": row.custom_css,
        "mastodon_branding_image_files": files,
    }
