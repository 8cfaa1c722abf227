from __future__ import annotations

import uuid

from fastapi import APIRouter

from controlplane.deployments import service
from controlplane.deployments.schemas import PreviewOut
from controlplane.deps import API_PREFIX, PrincipalDep, SessionDep
from controlplane.jobs.schemas import JobOut

router = APIRouter(prefix=API_PREFIX, tags=["deployments"])


@router.get("/servers/{server_id}/preview", response_model=PreviewOut)
def preview_server(
    server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> PreviewOut:
    """The files Herd would deploy on the server's host now (configuration,
    nginx site, units, branding, maintenance page), every secret masked.
    409 `server-not-placed` while the server has no host."""
    return PreviewOut.model_validate(service.preview(session, principal, server_id))


@router.post("/servers/{server_id}/drift", response_model=JobOut, status_code=202)
def check_drift(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> JobOut:
    """Staff: compare the server's files on its host with what Herd would
    deploy. Follow the job (GET /jobs/{id}): its `inspect_files` step's
    result gives each file as same, differs or missing."""
    return JobOut.model_validate(service.start_drift_check(session, principal, server_id))
