"""The moderation queue's periodic pull: thin, the work is in
controlplane.moderation.queue."""

from __future__ import annotations

import logging

import controlplane.models  # noqa: F401  (every table, for the foreign keys)
from controlplane.db import get_engine
from controlplane.moderation.queue import pull_all
from provisioning.celery_app import celery_app

log = logging.getLogger(__name__)
PULL_TASK = "herd.moderation.pull_reports"


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
