"""What every step that runs a playbook on a server's host shares: finding
the server and its host, and running the playbook with the job's events
recorded and its secrets redacted."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from controlplane.fleet.models import Host
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from provisioning.ansible import PlaybookResult, TaskEvent, run_playbook
from provisioning.hosts import inventory_for
from provisioning.pipeline import StepContext, StepFailed


def server_of(session: Session, context: StepContext) -> Server:
    server = session.get(Server, context.server_id) if context.server_id else None
    if server is None:
        raise StepFailed("the server no longer exists")
    return server


def host_of(session: Session, server: Server) -> Host:
    host = session.get(Host, server.host_id) if server.host_id else None
    if host is None or server.slot is None:
        raise StepFailed("the server is not placed on a host")
    return host


def run_on_host(
    context: StepContext,
    playbook: str,
    host: Host,
    variables: dict[str, Any],
    transform: Callable[[TaskEvent], TaskEvent] = lambda event: event,
) -> PlaybookResult:
    """Run ``playbook`` against ``host``; each task event, passed through
    ``transform``, becomes a job event."""

    def record(event: TaskEvent) -> None:
        context.record_event(**dataclasses.asdict(transform(event)))

    settings = get_settings()
    return run_playbook(
        playbook,
        inventory_for([host]),
        variables,
        settings.data_dir / "runs",
        # ident = job id: one private folder per job, so the run after a
        # killed one starts by removing what the killed one left behind.
        str(context.job_id),
        record,
        context.redactor,
        timeout_seconds=settings.playbook_timeout_seconds,
        should_cancel=context.should_cancel,
        skip_tags=settings.playbook_skip_tags,
    )
