"""Moderation's periodic tasks, thin: the work is in controlplane.moderation
(the queue's pull in queue, settling moderator access in sync)."""

from __future__ import annotations

import logging

import controlplane.models  # noqa: F401  (every table, for the foreign keys)
from controlplane.db import get_engine
from controlplane.moderation.queue import pull_all
from controlplane.moderation.sync import settle_all
from provisioning.celery_app import celery_app

log = logging.getLogger(__name__)
PULL_TASK = "herd.moderation.pull_reports"
SETTLE_TASK = "herd.moderation.settle_access"


@celery_app.task(name=PULL_TASK, ignore_result=True, time_limit=600, soft_time_limit=540)
def pull_reports() -> dict[str, int]:
    """Bring in what the staffed servers' webhooks missed. Each server is
    pulled on its own: one that fails is recorded on the queue, not raised."""
    summary = pull_all(get_engine())
    if summary.failed:
        log.warning(
            "moderation pull: %d of %d server(s) failed", len(summary.failed), summary.servers
        )
    return {"servers": summary.servers, "reports": summary.reports, "failed": len(summary.failed)}


@celery_app.task(name=SETTLE_TASK, ignore_result=True, time_limit=300, soft_time_limit=270)
def settle_access() -> dict[str, int]:
    """A `moderators` job for each server whose moderator access is not yet
    what is wanted (a failed job, a later placement, a demotion)."""
    settled = settle_all(get_engine())
    if settled.started:
        log.info("moderator access: %d server(s) given a job", len(settled.started))
    return {"checked": settled.checked, "started": len(settled.started), "waiting": settled.waiting}
