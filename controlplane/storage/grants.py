"""What Herd records of each server's object storage, and the role variables
that point the server's Mastodon at it.

The crash window. The store shows a key's secret once, when the key is
created, and the key exists on the store before its row is committed. So
`ensure_grant` passes the key id recorded here to `ensure_server_storage`,
which deletes every other key of the server's user: a worker killed after the
store made a key and before the commit leaves a key whose secret is lost, and
the next run deletes it and makes one new key. The caller must commit as soon
as `ensure_grant` returns, before anything hands the key out.

Calls for one server must not overlap (the job lease sees to that); if two
first runs race anyway, the loser's insert fails and it retries, recording
whichever key the store then holds.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from controlplane.crypto import secret_box
from controlplane.sqltypes import utcnow
from controlplane.storage.errors import StorageError, StorageNotConfigured, StorageUnavailable
from controlplane.storage.mastodon import mastodon_env
from controlplane.storage.models import ServerStorage
from controlplane.storage.service import ensure_server_storage, grant_for, storage_names
from controlplane.storage.settings import StorageSettings, get_storage_settings

NOT_CONFIGURED = "object storage is not configured (HERD_S3_*)"


def ensure_grant(
    session: Session, server_id: uuid.UUID, *, settings: StorageSettings | None = None
) -> ServerStorage:
    """Create what is missing of the server's storage and record its key.

    Adds and flushes the row; the caller commits, at once (see the module's
    docstring). Raises StorageNotConfigured when storage is off, and
    StorageError (StorageUnavailable when it may pass) from the store.
    """
    settings = settings or get_storage_settings()
    if not settings.configured:
        raise StorageNotConfigured(NOT_CONFIGURED)
    row = session.get(ServerStorage, server_id)
    names = storage_names(server_id, settings)
    if row is not None and row.media_bucket != names.media_bucket:
        # Going on would give the server new, empty buckets and hide its
        # media; moving media between buckets is a person's decision.
        raise StorageError(
            f"server {server_id} keeps its media in {row.media_bucket}, but "
            f"HERD_S3_BUCKET_PREFIX now names {names.media_bucket}"
        )

    grant = ensure_server_storage(
        server_id, row.access_key_id if row is not None else None, settings=settings
    )
    if grant.secret_access_key is None:
        # The recorded key was kept: its stored secret is still the one.
        assert row is not None, "a server without a recorded key always gets a new one"
        return row

    encrypted = secret_box().encrypt(grant.secret_access_key)
    if row is not None:
        # The recorded key was gone from the store (deleted by hand): the
        # new one replaces it.
        row.access_key_id = grant.access_key_id
        row.secret_access_key_encrypted = encrypted
        row.updated_at = utcnow()
        session.add(row)
        session.flush()
        return row

    row = ServerStorage(
        server_id=server_id,
        media_bucket=grant.bucket,
        backups_bucket=grant.backups_bucket,
        access_key_id=grant.access_key_id,
        secret_access_key_encrypted=encrypted,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError as exc:
        # Another run recorded its key meanwhile; ours may have deleted it,
        # or both keys may be live. A new run starts from the recorded key
        # and converges on exactly one.
        raise StorageUnavailable(
            f"the storage of server {server_id} was recorded by another run; trying again"
        ) from exc
    return row


def storage_variables(
    session: Session, server_id: uuid.UUID, *, settings: StorageSettings | None = None
) -> dict[str, Any]:
    """The `mastodon_s3_*` role variables of the server's grant, secret
    included; empty when the server has none (its media stays on its host)."""
    row = session.get(ServerStorage, server_id)
    if row is None:
        return {}
    settings = settings or get_storage_settings()
    if not settings.configured:
        # Writing S3_ENABLED=false would leave the server without its media.
        raise StorageNotConfigured(
            f"server {server_id} keeps its media in {row.media_bucket}, but {NOT_CONFIGURED}"
        )
    names = replace(
        storage_names(server_id, settings),
        media_bucket=row.media_bucket,
        backups_bucket=row.backups_bucket,
    )
    grant = grant_for(server_id, row.access_key_id, names=names, settings=settings)
    env = mastodon_env(grant, secret_box().decrypt(row.secret_access_key_encrypted))
    return {
        "mastodon_s3_enabled": True,
        "mastodon_s3_bucket": env["S3_BUCKET"],
        "mastodon_s3_region": env["S3_REGION"],
        "mastodon_s3_endpoint": env["S3_ENDPOINT"],
        "mastodon_s3_protocol": env["S3_PROTOCOL"],
        "mastodon_s3_hostname": env["S3_HOSTNAME"],
        # The template leaves S3_ALIAS_HOST out when this is empty, which is
        # what Mastodon needs (see controlplane.storage.mastodon).
        "mastodon_s3_alias_host": env.get("S3_ALIAS_HOST", ""),
        # The role writes S3_OVERRIDE_PATH_STYLE=true only when this is true.
        "mastodon_s3_override_path_style": env["S3_OVERRIDE_PATH_STYLE"] == "true",
        # "" is written as an empty S3_PERMISSION (no ACL on uploads), not omitted.
        "mastodon_s3_permission": env["S3_PERMISSION"],
        "mastodon_s3_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "mastodon_s3_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }


def grant_secrets(session: Session, server_id: uuid.UUID) -> list[str]:
    """The server's storage secret, for redaction; none without a grant."""
    row = session.get(ServerStorage, server_id)
    return [] if row is None else [secret_box().decrypt(row.secret_access_key_encrypted)]
