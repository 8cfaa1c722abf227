"""The provisioning step that gives a server its object storage: buckets for
media and backups, and the key Mastodon writes media with."""

from __future__ import annotations

from typing import Any

from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.storage import (
    ServerStorage,
    StorageError,
    StorageUnavailable,
    delete_server_data,
    ensure_grant,
    get_storage_settings,
    revoke_server_credentials,
)
from controlplane.storage.retention import PURGE_JOB
from provisioning.pipeline import Pipeline, Step, StepContext, StepFailed, StepRetry


def prepare_storage(context: StepContext) -> dict[str, Any]:
    settings = get_storage_settings()
    if not settings.configured:
        # Mastodon keeps media on the host (public/system), which the backup
        # playbook then includes.
        return {"skipped": "object storage is not configured (HERD_S3_*); media stays on the host"}
    assert context.server_id is not None
    with context.session() as session:
        if session.get(Server, context.server_id) is None:
            raise StepFailed("the server no longer exists")
        try:
            grant = ensure_grant(session, context.server_id, settings=settings)
        except StorageUnavailable as exc:
            raise StepRetry(str(exc)) from exc
        except StorageError as exc:
            # Refused credentials, a bucket name someone else owns: a person
            # must act, so retrying would only delay the failure.
            raise StepFailed(str(exc)) from exc
        # At once: until this commits, the key is one the next run deletes.
        session.commit()
    # The secret stays out: step results are kept and shown to staff.
    return {
        "media_bucket": grant.media_bucket,
        "backups_bucket": grant.backups_bucket,
        "access_key_id": grant.access_key_id,
    }


def purge_storage(context: StepContext) -> dict[str, Any]:
    """A deleted server's buckets, emptied and deleted after retention; its
    storage record goes last, so an interrupted purge is taken up again."""
    assert context.server_id is not None
    with context.session() as session:
        server = session.get(Server, context.server_id)
        row = session.get(ServerStorage, context.server_id)
        if row is None:
            return {"skipped": "the server's data is already gone"}
        if server is not None and server.state != ServerState.deleted:
            raise StepFailed(f"the server is {server.state.value}: its data stays")
        buckets = [row.media_bucket, row.backups_bucket]
    settings = get_storage_settings()
    if not settings.configured:
        raise StepFailed("object storage is not configured (HERD_S3_*): nothing can be deleted")
    try:
        # Idempotent; a key that outlived deprovisioning must not write
        # into a bucket while it empties.
        revoke_server_credentials(context.server_id, settings=settings)
        delete_server_data(context.server_id, settings=settings)
    except StorageUnavailable as exc:
        raise StepRetry(str(exc)) from exc
    except StorageError as exc:
        raise StepFailed(str(exc)) from exc
    with context.session() as session:
        row = session.get(ServerStorage, context.server_id)
        if row is not None:
            session.delete(row)
            session.commit()
    return {"deleted": buckets}


PURGE_STORAGE = Pipeline(
    PURGE_JOB, (Step("purge_storage", purge_storage, attempts=8, backoff_seconds=60),)
)
