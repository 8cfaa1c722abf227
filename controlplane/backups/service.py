"""A server's backups: reading the list the last `backups` job found on its
host plus its final backups in object storage, and starting that job.

Herd does not record backups as they are taken (the upgrade playbook names
its own, an operator may take one by hand): the host is the truth, and the
`backups` job (playbooks/backups.yml, read-only) reads it on request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import STAFF_ROLE_PERMS, Perm, StaffPerm
from controlplane.backups.final import StoredBackup, final_backups
from controlplane.backups.report import HostBackup
from controlplane.deployments.errors import NotPlaced
from controlplane.jobs import service as jobs
from controlplane.jobs.models import Job, JobState, JobStep
from controlplane.problems import Forbidden, NotFound
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.storage import StorageError

BACKUPS_JOB = "backups"
LIST_STEP = "list_backups"


@dataclass(frozen=True)
class Listing:
    """What the last successful `backups` job found on the host."""

    job_id: uuid.UUID
    checked_at: datetime | None
    host: str
    backups: list[HostBackup]


@dataclass(frozen=True)
class BackupsView:
    server: Server
    # None until a `backups` job has succeeded for the server.
    listing: Listing | None
    # A `backups` job not finished yet.
    refreshing: Job | None
    stored: list[StoredBackup]
    # Why object storage could not be listed; None when it was (or there is none).
    storage_error: str | None
    can_refresh: bool


def _visible(session: Session, principal: Principal, server_id: uuid.UUID) -> Server:
    server = session.get(Server, server_id)
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("server not found")
    principal.require(server.organisation_id, Perm.servers_read, "server")
    return server


def may_refresh(principal: Principal, server: Server) -> bool:
    """The roles that change the server, and staff who work on hosts: the
    job only reads, but it does so over SSH on the server's host."""
    if Perm.servers_update in principal.org_perms(server.organisation_id):
        return True
    role = principal.staff_role
    return role is not None and StaffPerm.hosts_manage in STAFF_ROLE_PERMS[role]


def last_listing(session: Session, server_id: uuid.UUID) -> Listing | None:
    row = session.exec(
        select(Job, JobStep)
        .join(JobStep, col(JobStep.job_id) == Job.id)
        .where(
            Job.server_id == server_id,
            Job.kind == BACKUPS_JOB,
            Job.state == JobState.succeeded,
            JobStep.name == LIST_STEP,
        )
        # Job ids are UUIDv7: the newest job has the greatest id.
        .order_by(col(Job.id).desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    job, step = row
    return Listing(
        job_id=job.id,
        checked_at=job.finished_at,
        host=str(step.result.get("host", "")),
        backups=[HostBackup.from_json(b) for b in step.result.get("backups", [])],
    )


def get_backups(session: Session, principal: Principal, server_id: uuid.UUID) -> BackupsView:
    server = _visible(session, principal, server_id)
    try:
        stored, storage_error = final_backups(session, server.id), None
    except StorageError as exc:
        # The host's list is still worth showing when the store is down.
        stored, storage_error = [], exc.detail
    return BackupsView(
        server=server,
        listing=last_listing(session, server.id),
        refreshing=jobs.active_job(session, server.id, BACKUPS_JOB),
        stored=stored,
        storage_error=storage_error,
        can_refresh=may_refresh(principal, server),
    )


def start_refresh(session: Session, principal: Principal, server_id: uuid.UUID) -> Job:
    """Record a `backups` job listing the backups on the server's host; one
    not finished yet is returned instead of a second."""
    from provisioning.registry import pipelines

    server = _visible(session, principal, server_id)
    if not may_refresh(principal, server):
        raise Forbidden(f"your role does not allow {Perm.servers_update.value}")
    if server.state == ServerState.deleted:
        raise NotPlaced("the server is deleted: its host holds nothing of it any more")
    if server.host_id is None or server.slot is None:
        raise NotPlaced(
            f"the server is {server.state.value} and not placed on a host yet, "
            "so it has no backups there",
            state=server.state.value,
        )
    job = jobs.active_job(session, server.id, BACKUPS_JOB)
    if job is None:
        job = jobs.create_job(session, BACKUPS_JOB, pipelines()[BACKUPS_JOB].step_names, server.id)
        audit.record(
            session,
            principal,
            "server.backups_refresh",
            "server",
            server.id,
            server.organisation_id,
            {"job": str(job.id)},
        )
    return job
