from __future__ import annotations

import uuid

from fastapi import APIRouter

from controlplane.backups import service
from controlplane.backups.schemas import BackupsOut, HostBackupOut, StoredBackupOut
from controlplane.deps import API_PREFIX, PrincipalDep, SessionDep
from controlplane.jobs.schemas import JobOut

router = APIRouter(prefix=API_PREFIX, tags=["backups"])


def backups_out(view: service.BackupsView) -> BackupsOut:
    listing = view.listing
    return BackupsOut(
        server_id=view.server.id,
        checked_by_job=listing.job_id if listing else None,
        checked_at=listing.checked_at if listing else None,
        on_host=[HostBackupOut.model_validate(b) for b in listing.backups] if listing else [],
        refresh_job_id=view.refreshing.id if view.refreshing else None,
        in_storage=[StoredBackupOut.model_validate(b) for b in view.stored],
        storage_error=view.storage_error,
    )


@router.get("/servers/{server_id}/backups", response_model=BackupsOut)
def get_backups(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> BackupsOut:
    """The backups on the server's host as the last `backups` job found
    them (refresh to look again), and its final backups in object storage."""
    return backups_out(service.get_backups(session, principal, server_id))


@router.post("/servers/{server_id}/backups/refresh", response_model=JobOut, status_code=202)
def refresh_backups(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> JobOut:
    """Start a `backups` job listing the backups on the server's host (it
    changes nothing there); one already under way is returned. 409
    `server-not-placed` while the server has no host."""
    return JobOut.model_validate(service.start_refresh(session, principal, server_id))
