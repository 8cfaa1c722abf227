"""Sending work to the workers only after the intent is committed.

A task sent before its transaction commits can run before the row it needs
exists, or for a change that then rolls back. Jobs queued here are sent from
the session's after_commit hook; if the broker is down the send is logged and
the reconciler picks the job up from the database.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
_KEY = "herd_jobs_to_dispatch"
RUN_JOB_TASK = "herd.run_job"


def dispatch_after_commit(session: Session, job_id: uuid.UUID) -> None:
    session.info.setdefault(_KEY, []).append(job_id)


def send_now(job_id: uuid.UUID, countdown: float | None = None) -> None:
    from provisioning.celery_app import celery_app

    try:
        celery_app.send_task(RUN_JOB_TASK, args=[str(job_id)], countdown=countdown)
    except Exception:  # noqa: BLE001 - any broker failure: the reconciler will resend
        log.warning("could not send job %s to the broker; the reconciler will", job_id)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    for job_id in session.info.pop(_KEY, []):
        send_now(job_id)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)
