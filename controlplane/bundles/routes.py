from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from controlplane.auth.principal import Principal
from controlplane.bundles import service
from controlplane.bundles.schemas import BundleRequest, ReportCreate, ReportOut, SigningKeyOut
from controlplane.bundles.signing import published_key
from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.pagination import Page
from controlplane.problems import Unauthenticated
from controlplane.tokens import service as tokens

router = APIRouter(prefix=API_PREFIX, tags=["playbooks"])
_bearer = HTTPBearer(auto_error=False, description="An API token with the 'playbooks' scope")


def playbooks_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller, without the read/write rule of other endpoints: the
    `playbooks` scope (checked by the service, after visibility) is the whole
    grant here, so an in-house team's automation needs no other power."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("send an API token as 'Authorization: Bearer <token>'")
    principal = tokens.authenticate(session, credentials.credentials)
    request.state.principal = principal
    return principal


PlaybooksPrincipalDep = Annotated[Principal, Depends(playbooks_principal)]


@router.get("/playbooks/signing-key", response_model=SigningKeyOut)
def signing_key() -> SigningKeyOut:
    """The public key bundle manifests are signed with (no token needed):
    pin it, or compare its fingerprint out of band."""
    key = published_key()
    return SigningKeyOut(public_key_pem=key.pem, fingerprint=key.fingerprint)


@router.post(
    "/organisations/{org_id}/playbooks/bundle",
    response_class=Response,
    responses={200: {"content": {"application/gzip": {}}, "description": "The signed bundle"}},
)
def pull_bundle(
    org_id: uuid.UUID,
    principal: PlaybooksPrincipalDep,
    session: SessionDep,
    body: BundleRequest | None = None,
) -> Response:
    """The organisation's signed playbook bundle (tar.gz). Needs the token's
    `playbooks` scope, the owner or admin role, and a support contract in
    force (403 `no-support-contract`). With `include_secrets`, the servers'
    secrets are in it, encrypted with ansible-vault under `vault_passphrase`."""
    request = body or BundleRequest()
    passphrase = request.vault_passphrase.get_secret_value() if request.vault_passphrase else None
    bundle = service.pull(session, principal, org_id, passphrase)
    return Response(
        bundle.data,
        media_type="application/gzip",
        headers={
            "Content-Disposition": f'attachment; filename="{bundle.filename}"',
            "X-Herd-Bundle-Version": bundle.version,
            "X-Herd-Bundle-Sha256": bundle.sha256,
        },
    )


@router.post("/organisations/{org_id}/playbooks/reports", response_model=ReportOut, status_code=201)
def report_run(
    org_id: uuid.UUID, data: ReportCreate, principal: PlaybooksPrincipalDep, session: SessionDep
) -> ReportOut:
    """Report a run of a pulled bundle (`herd playbooks report` sends it
    from ansible-playbook's PLAY RECAP)."""
    return ReportOut.model_validate(service.record_report(session, principal, org_id, data))


@router.get("/organisations/{org_id}/playbooks/reports", response_model=Page[ReportOut])
def organisation_reports(
    org_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[ReportOut]:
    rows, cursor = service.list_reports(session, principal, page, org_id)
    return Page(items=[ReportOut.model_validate(r) for r in rows], next_cursor=cursor)


@router.get("/playbooks/reports", response_model=Page[ReportOut])
def fleet_reports(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
) -> Page[ReportOut]:
    """Staff: every organisation's reports, or one organisation's."""
    rows, cursor = service.list_reports(session, principal, page, organisation_id, fleet_wide=True)
    return Page(items=[ReportOut.model_validate(r) for r in rows], next_cursor=cursor)
