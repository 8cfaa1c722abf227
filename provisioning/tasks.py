"""Celery tasks. Thin on purpose: each passes an id to a service that
re-reads the state from the database, so a task run twice (late
acknowledgement, a reconciler resend) does nothing twice."""

from __future__ import annotations

import logging
import uuid

from sqlmodel import Session

# Every table, so the steps' foreign keys resolve in a worker that never
# imports the API's modules.
import controlplane.models  # noqa: F401
from controlplane.db import get_engine
from controlplane.jobs.dispatch import send_now
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow
from provisioning import pipeline
from provisioning.celery_app import celery_app
from provisioning.registry import pipelines, redactor_for

log = logging.getLogger(__name__)


@celery_app.task(name="herd.run_job", acks_late=True, ignore_result=True)
def run_job(job_id: str) -> str:
    settings = get_settings()
    outcome = pipeline.run_job(
        get_engine(), uuid.UUID(job_id), pipelines(), settings.job_lease_seconds, redactor_for
    )
    if outcome.retry_in is not None:
        send_now(uuid.UUID(job_id), countdown=outcome.retry_in)
    return outcome.state.value


@celery_app.task(name="herd.reconcile", ignore_result=True)
def reconcile() -> int:
    """Resend every job that is due and held by no live worker."""
    due = pipeline.due_jobs(get_engine(), utcnow())
    for job_id in due:
        send_now(job_id)
    if due:
        log.info("reconciler resent %d job(s)", len(due))
    return len(due)


@celery_app.task(name="herd.purge_storage", ignore_result=True)
def purge_storage() -> int:
    """Start purging the data of servers deleted longer ago than retention."""
    from controlplane.storage.retention import start_due_purges

    with Session(get_engine()) as session:
        started = start_due_purges(session, utcnow())
        session.commit()
    if started:
        log.info("started purging the data of %d deleted server(s)", len(started))
    return len(started)
