"""What billing asks of a server's host: suspend it, resume it, take its
final backup, and deprovision it.

    suspend:      wait_turn → run_suspend
    resume:       wait_turn → run_resume
    final_backup: wait_turn → run_suspend → run_final_backup
    deprovision:  wait_turn → run_deprovision → finish_deprovision

The lifecycle state moves when billing creates the job (so a second decision
sees it at once); the job then makes the host match. Each job waits for the
server's older unfinished jobs first, since a resume that overtook its
suspend, or a deprovision that overtook the final backup, would leave the
host in the wrong state.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from sqlmodel import Session, col, select

from controlplane.jobs.models import FINISHED, Job
from controlplane.servers.lifecycle import Actor, ServerState
from controlplane.servers.models import Server
from controlplane.servers.service import apply_event
from controlplane.storage import StorageUnavailable, get_storage_settings, revoke_server_credentials
from controlplane.storage.models import ServerStorage
from controlplane.storage.uploads import presigned_backup_upload
from provisioning import host_scripts
from provisioning.pipeline import Pipeline, Step, StepContext, StepRetry
from provisioning.steps.identity import REMOVE_IDENTITY
from provisioning.steps.provision import playbook_step
from provisioning.steps.runs import server_of

FINAL_BACKUP_LABEL = "final"


def wait_turn(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        older = session.exec(
            select(Job.id).where(
                Job.server_id == context.server_id,
                col(Job.id) < context.job_id,
                col(Job.state).not_in(FINISHED),
            )
        ).first()
    if older is not None:
        raise StepRetry(f"waiting for job {older} on the same server")
    return {}


def _playbook(
    playbook: str, extra: Callable[[Session, Server], dict[str, Any]] | None = None
) -> Step:
    # The server may never have reached a host (ended or suspended while
    # awaiting payment or placement): then there is nothing to run.
    return playbook_step(playbook, extra, skip_unplaced=True)


def _final_backup_variables(session: Session, server: Server) -> dict[str, Any]:
    variables: dict[str, Any] = {"mastodon_backup_label": FINAL_BACKUP_LABEL}
    grant = session.get(ServerStorage, server.id)
    settings = get_storage_settings()
    if grant is None or not settings.configured:
        # No object storage: the backup stays on the host; deprovision.yml
        # then copies it outside the home before removing the server.
        return variables
    # Mastodon's own key cannot reach the backups bucket (so a compromised
    # host cannot destroy its backups), and Herd's key never leaves the
    # control plane: the host gets a presigned POST that lets it write under
    # this backup's prefix for an hour, and nothing else.
    upload = presigned_backup_upload(settings, grant.backups_bucket, f"{FINAL_BACKUP_LABEL}/")
    variables |= {
        "mastodon_backup_upload_command": [
            "python3",
            "-c",
            host_scripts.source("upload_backup"),
            "{path}",
        ],
        "mastodon_backup_upload_environment": {"HERD_BACKUP_UPLOAD": json.dumps(upload)},
    }
    return variables


def _deprovision_variables(_session: Session, server: Server) -> dict[str, Any]:
    return {"mastodon_deprovision_confirm": server.domain}


def revoke_storage(context: StepContext) -> dict[str, Any]:
    """The server's S3 key and IAM user go with the server; its buckets stay
    for the retention period (the backups bucket's lifecycle rule expires
    what is in it)."""
    with context.session() as session:
        grant = session.get(ServerStorage, context.server_id) if context.server_id else None
    settings = get_storage_settings()
    if grant is None or not settings.configured:
        return {"skipped": "the server has no object storage"}
    try:
        revoke_server_credentials(grant.server_id, settings=settings)
    except StorageUnavailable as exc:
        raise StepRetry(str(exc)) from exc
    return {"revoked": grant.access_key_id}


def finish_deprovision(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = server_of(session, context)
        if server.state == ServerState.deprovisioning:
            apply_event(session, server, "deprovisioned", Actor.system, "billing")
            # The slot goes back to the host for the next server.
            server.host_id, server.slot = None, None
            session.add(server)
            session.commit()
        return {"state": server.state.value}


_WAIT = Step("wait_turn", wait_turn, attempts=120, backoff_seconds=10, max_backoff_seconds=60)
SUSPEND = Pipeline("suspend", (_WAIT, _playbook("suspend.yml")))
RESUME = Pipeline("resume", (_WAIT, _playbook("resume.yml")))
FINAL_BACKUP = Pipeline(
    "final_backup",
    (
        _WAIT,
        _playbook("suspend.yml"),
        dataclasses.replace(
            _playbook("backup.yml", _final_backup_variables), name="run_final_backup"
        ),
    ),
)
DEPROVISION = Pipeline(
    "deprovision",
    (
        _WAIT,
        _playbook("deprovision.yml", _deprovision_variables),
        Step("revoke_storage", revoke_storage, attempts=8, backoff_seconds=15),
        REMOVE_IDENTITY,
        Step("finish_deprovision", finish_deprovision),
    ),
)
