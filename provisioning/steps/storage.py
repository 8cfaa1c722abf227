"""The provisioning step that gives a server its object storage: buckets for
media and backups, and the key Mastodon writes media with."""

from __future__ import annotations

from typing import Any

from controlplane.servers.models import Server
from controlplane.storage import (
    StorageError,
    StorageUnavailable,
    ensure_grant,
    get_storage_settings,
)
from provisioning.pipeline import StepContext, StepFailed, StepRetry


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
