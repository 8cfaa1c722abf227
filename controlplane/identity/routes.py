from __future__ import annotations

import uuid

from fastapi import APIRouter

from controlplane.deps import API_PREFIX, PrincipalDep, SessionDep
from controlplane.identity import service
from controlplane.identity.schemas import SsoOut, SsoUpdate
from controlplane.jobs.schemas import JobOut

router = APIRouter(prefix=API_PREFIX, tags=["single sign-on"])


@router.get("/organisations/{org_id}/sso", response_model=SsoOut)
def get_sso(org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> SsoOut:
    """The organisation's single sign-on, its realm and issuer, what to
    register at its own identity provider, and each server's client."""
    return SsoOut.model_validate(service.get_sso(session, principal, org_id))


@router.put("/organisations/{org_id}/sso", response_model=SsoOut)
def put_sso(
    org_id: uuid.UUID, body: SsoUpdate, principal: PrincipalDep, session: SessionDep
) -> SsoOut:
    """Switch single sign-on on or off, or change it. Each running server
    gets an `sso` job (listed in `jobs`) that sets up or removes its client
    and deploys its OIDC settings. 409 `sso-not-available` when this Herd
    has no Keycloak."""
    change = service.SsoChange(
        enabled=body.enabled,
        display_name=body.display_name,
        login_theme=body.login_theme,
        omniauth_only=body.omniauth_only,
        one_click_sso_login=body.one_click_sso_login,
        upstream=body.upstream_fields(),
        upstream_client_secret=body.upstream_secret(),
    )
    return SsoOut.model_validate(service.update_sso(session, principal, org_id, change))


@router.post("/servers/{server_id}/sso/rotate", response_model=JobOut, status_code=202)
def rotate_sso_secret(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> JobOut:
    """Rotate the server's OIDC client secret: Keycloak makes a new one, the
    server is deployed with it, then the old one is retired. Sign-ins may
    fail for the seconds in between unless the realm has a secret-rotation
    policy (see the identity README)."""
    return JobOut.model_validate(service.start_rotation(session, principal, server_id))
