"""Creating jobs and reading them; the worker side (claiming, checkpoints)
is in provisioning.pipeline."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.jobs.dispatch import dispatch_after_commit
from controlplane.jobs.models import FINISHED, Job, JobEvent, JobState, JobStep
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import Conflict, NotFound
from controlplane.servers.models import Server


def create_job(
    session: Session,
    kind: str,
    steps: list[str],
    server_id: uuid.UUID | None = None,
    params: dict[str, Any] | None = None,
) -> Job:
    """Record a job and its steps; it is sent to a worker once the caller's
    transaction commits."""
    job = Job(kind=kind, server_id=server_id, params=params or {})
    session.add(job)
    session.flush()
    for position, name in enumerate(steps):
        session.add(JobStep(job_id=job.id, position=position, name=name))
    dispatch_after_commit(session, job.id)
    return job


def active_job(session: Session, server_id: uuid.UUID, kind: str) -> Job | None:
    return session.exec(
        select(Job).where(
            Job.server_id == server_id,
            Job.kind == kind,
            col(Job.state).not_in(FINISHED),
        )
    ).first()


def _visible(session: Session, principal: Principal, job_id: uuid.UUID) -> Job:
    job = session.get(Job, job_id)
    if job is None:
        raise NotFound("job not found")
    if principal.is_staff:
        return job
    server = session.get(Server, job.server_id) if job.server_id else None
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("job not found")
    principal.require(server.organisation_id, Perm.servers_read, "job")
    return job


def get_job(session: Session, principal: Principal, job_id: uuid.UUID) -> tuple[Job, list[JobStep]]:
    job = _visible(session, principal, job_id)
    steps = session.exec(
        select(JobStep).where(JobStep.job_id == job.id).order_by(col(JobStep.position))
    ).all()
    return job, list(steps)


def list_jobs(
    session: Session,
    principal: Principal,
    page: PageRequest,
    server_id: uuid.UUID | None = None,
    state: JobState | None = None,
) -> tuple[list[Job], str | None]:
    statement = select(Job)
    if server_id is not None:
        server = session.get(Server, server_id)
        if server is None or not principal.can_see(server.organisation_id):
            raise NotFound("server not found")
        principal.require(server.organisation_id, Perm.servers_read, "server")
        statement = statement.where(Job.server_id == server_id)
    else:
        principal.require_staff(StaffPerm.fleet_read)
    if state is not None:
        statement = statement.where(Job.state == state)
    rows = session.exec(paginate(statement, Job.id, page)).all()
    return finish_page(rows, page, lambda job: job.id)


def list_events(
    session: Session, principal: Principal, job_id: uuid.UUID, page: PageRequest
) -> tuple[list[JobEvent], str | None]:
    job = _visible(session, principal, job_id)
    statement = select(JobEvent).where(JobEvent.job_id == job.id)
    rows = session.exec(paginate(statement, JobEvent.id, page)).all()
    return finish_page(rows, page, lambda event: event.id)


def events_after(
    session: Session, job_id: uuid.UUID, after: uuid.UUID | None, limit: int = 200
) -> list[JobEvent]:
    statement = select(JobEvent).where(JobEvent.job_id == job_id)
    if after is not None:
        statement = statement.where(JobEvent.id > after)
    return list(session.exec(statement.order_by(col(JobEvent.id)).limit(limit)).all())


def request_cancel(session: Session, principal: Principal, job_id: uuid.UUID) -> Job:
    principal.require_staff(StaffPerm.servers_suspend)
    job = _visible(session, principal, job_id)
    if job.state in FINISHED:
        raise Conflict(f"the job has already {job.state.value}")
    job.cancel_requested = True
    session.add(job)
    audit.record(session, principal, "job.cancel", "job", job.id, None, {"kind": job.kind})
    return job
