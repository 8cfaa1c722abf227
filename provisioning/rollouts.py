"""The rollout engine's Celery task: a periodic reconcile of every rollout
in flight (controlplane/rollouts/engine.py does the work), and the health
probe it runs after each wave."""

from __future__ import annotations

import logging

import controlplane.models  # noqa: F401 - every table, for a worker that imports nothing else
from controlplane.db import get_engine
from controlplane.fleet.models import Host
from controlplane.rollouts import engine
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow
from provisioning import health
from provisioning.celery_app import celery_app

log = logging.getLogger(__name__)
ADVANCE_TASK = "herd.advance_rollouts"


def probe(server: Server, host: Host | None, tag: str) -> tuple[bool, str]:
    """`/health` and the expected version at `/api/v2/instance`, as the
    upgrade job's own gate checks them."""
    if host is None or server.slot is None:
        return False, "the server has no host"
    direct = get_settings().health_check == "direct"
    report = health.check(health.base_url(server, host), tag, server.domain if direct else None)
    return report.healthy, report.detail


@celery_app.task(name=ADVANCE_TASK, ignore_result=True)
def advance_rollouts() -> int:
    return engine.advance_all(get_engine(), utcnow(), probe)


def send_advance() -> None:
    try:
        celery_app.send_task(ADVANCE_TASK)
    except Exception:  # noqa: BLE001 - any broker failure: the beat schedule runs it anyway
        log.warning("could not send the rollout tick; the beat schedule will")
