"""When a deleted server's data goes: its buckets stay for the retention
period after deprovisioning (HERD_S3_DATA_RETENTION_DAYS), then a
`purge_storage` job empties and deletes them.

The reconciler calls `start_due_purges` with the current time; tests inject
it. A server's ServerStorage row is what marks data as still there: the job
deletes it last, so a purge interrupted halfway is started again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.jobs import service as jobs
from controlplane.jobs.models import Job
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.storage.models import ServerStorage
from controlplane.storage.settings import StorageSettings, get_storage_settings

PURGE_JOB = "purge_storage"


def start_due_purges(
    session: Session, now: datetime, *, settings: StorageSettings | None = None
) -> list[Job]:
    """Record a purge job for each deleted server past its retention whose
    data is still there and not being purged already; the caller commits."""
    from provisioning.registry import pipelines

    settings = settings or get_storage_settings()
    if not settings.configured:
        return []
    cutoff = now - timedelta(days=settings.data_retention_days)
    due = session.exec(
        select(Server)
        .join(ServerStorage, col(ServerStorage.server_id) == col(Server.id))
        .where(Server.state == ServerState.deleted, col(Server.state_changed_at) <= cutoff)
        .order_by(col(Server.state_changed_at))
        .limit(100)
    ).all()
    started = []
    for server in due:
        if jobs.active_job(session, server.id, PURGE_JOB) is not None:
            continue
        job = jobs.create_job(session, PURGE_JOB, pipelines()[PURGE_JOB].step_names, server.id)
        audit.record(
            session,
            None,
            "server.storage_purge",
            "server",
            server.id,
            server.organisation_id,
            {"job": str(job.id), "deleted_at": server.state_changed_at.isoformat()},
        )
        started.append(job)
    return started
