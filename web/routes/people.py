"""Members and invitations, API tokens, and the organisation's audit log."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import OrgRole, Perm, Scope
from controlplane.deps import SessionDep
from controlplane.pagination import PageRequest, page_request
from controlplane.problems import HerdError
from controlplane.settings import get_settings
from controlplane.tenancy import service as tenancy
from controlplane.tenancy.schemas import InvitationCreate
from controlplane.tokens import service as tokens
from controlplane.tokens.schemas import TokenCreate
from web import forms
from web.routes.servers import org_context
from web.routing import PrincipalDep, WebRoute, parse_id, redirect, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
LIST_LIMIT = 200


def _members_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    org_id: uuid.UUID,
    created: tuple[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    organisation = org_context(request, session, principal, org_id)
    members, _ = tenancy.list_members(session, principal, org_id, PageRequest(limit=LIST_LIMIT))
    invitations, _ = tenancy.list_invitations(
        session, principal, org_id, PageRequest(limit=LIST_LIMIT)
    )
    perms = principal.org_perms(org_id)
    return render(
        request,
        "members.html",
        {
            "org": organisation,
            "members": members,
            "invitations": invitations,
            "can_manage": Perm.members_manage in perms,
            "roles": [r.value for r in OrgRole],
            "created": created,
            "errors": errors or {},
        },
        status_code=status,
    )


@router.get("/o/{org_id}/members")
def members(
    request: Request, org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    return _members_page(request, session, principal, org_id)


@router.post("/o/{org_id}/invitations")
def invite(
    request: Request,
    org_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "viewer",
) -> Response:
    data, errors = forms.parse(InvitationCreate, {"email": email.strip(), "role": role})
    if data is None:
        return _members_page(request, session, principal, org_id, errors=errors, status=422)
    try:
        _, plaintext = tenancy.create_invitation(session, principal, org_id, data)
    except HerdError as exc:
        if exc.status in (403, 404):
            raise
        return _members_page(
            request, session, principal, org_id, errors={"email": exc.detail}, status=exc.status
        )
    # The token is shown this once; only its digest is kept.
    return _members_page(request, session, principal, org_id, created=(data.email, plaintext))


@router.post("/o/{org_id}/invitations/{invitation_id}/revoke")
def revoke_invitation(
    org_id: uuid.UUID, invitation_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    tenancy.revoke_invitation(session, principal, org_id, invitation_id)
    return redirect(f"/o/{org_id}/members")


@router.post("/o/{org_id}/members/{user_id}/role")
def change_role(
    org_id: uuid.UUID,
    user_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    role: Annotated[OrgRole, Form()],
) -> Response:
    tenancy.change_member_role(session, principal, org_id, user_id, role)
    return redirect(f"/o/{org_id}/members")


@router.post("/o/{org_id}/members/{user_id}/remove")
def remove_member(
    org_id: uuid.UUID, user_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    tenancy.remove_member(session, principal, org_id, user_id)
    return redirect(f"/o/{org_id}/members")


def _tokens_page(
    request: Request,
    session: SessionDep,
    principal: Principal,
    created: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    mine, _ = tokens.list_for_caller(session, principal, PageRequest(limit=LIST_LIMIT))
    return render(
        request,
        "tokens.html",
        {
            "tokens": sorted(mine, key=lambda t: t.created_at, reverse=True),
            "scopes": sorted(s.value for s in principal.scopes),
            "created": created,
            "errors": errors or {},
            "max_days": get_settings().token_max_days,
        },
        status_code=status,
    )


@router.get("/tokens")
def token_list(request: Request, principal: PrincipalDep, session: SessionDep) -> Response:
    return _tokens_page(request, session, principal)


@router.post("/tokens")
def create_token(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    name: Annotated[str, Form()] = "",
    scopes: Annotated[list[str] | None, Form()] = None,
    expires_in_days: Annotated[str, Form()] = "30",
    organisation_id: Annotated[str, Form()] = "",
) -> Response:
    data, errors = forms.parse(
        TokenCreate,
        {
            "name": name.strip(),
            "scopes": scopes or [],
            "expires_in_days": expires_in_days,
            "organisation_id": parse_id(organisation_id),
        },
    )
    if data is None:
        return _tokens_page(request, session, principal, errors=errors, status=422)
    try:
        _, plaintext = tokens.create_for_caller(
            session,
            principal,
            data.name,
            {Scope(s) for s in data.scopes},
            timedelta(days=data.expires_in_days),
            data.organisation_id,
        )
    except HerdError as exc:
        return _tokens_page(
            request, session, principal, errors={"form": exc.detail}, status=exc.status
        )
    return _tokens_page(request, session, principal, created=plaintext)


@router.post("/tokens/{token_id}/revoke")
def revoke_token(token_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Response:
    tokens.revoke(session, principal, token_id)
    return redirect("/tokens")


@router.get("/o/{org_id}/audit")
def audit_log(
    request: Request,
    org_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    cursor: str | None = None,
) -> Response:
    organisation = org_context(request, session, principal, org_id)
    entries, next_cursor = audit.list_entries(
        session, principal, page_request(cursor, None), org_id
    )
    return render(
        request,
        "audit.html",
        {"org": organisation, "entries": entries, "next_cursor": next_cursor, "fleet": False},
    )
