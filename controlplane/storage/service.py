"""A server's object storage: its media bucket, its backups bucket, and the
IAM user whose key Mastodon writes media with.

Each server gets two buckets of its own rather than a prefix in a shared
one: a bucket policy or IAM statement then never has to get a prefix right
for isolation to hold, and each server's backups can have their own
retention (a bucket holds at most 1,000 lifecycle rules). The price is two
buckets per server against the account's bucket quota.

Mastodon's key may use its media bucket and nothing else. Backups are
written and read with Herd's own credentials, so a compromised host can
neither read another server's data nor destroy its own backups.

The access key rule, which makes `ensure_server_storage` converge after a
crash: the caller's database is the source of truth. The caller passes the
key id it has stored (with its secret); every other key of the user is
deleted, since its secret is lost (S3 shows a secret once, when the key is
created). With no stored id, or a stored id the store no longer has, all of
the user's keys are deleted and one new key is created and returned with
its secret, which the caller must store before using it. So a worker killed
between creating a key and committing it leaves one orphan key, which the
next run deletes: never two active keys, at most one key an earlier run
made. Calls for one server must not run concurrently (the job lease sees to
that): two interleaved runs could each delete the other's new key.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from controlplane.storage.backend import Identities, backend_for
from controlplane.storage.names import (
    MEDIA_POLICY_NAME,
    ServerStorageNames,
    media_policy,
    server_storage_names,
)
from controlplane.storage.settings import StorageSettings, get_storage_settings

log = logging.getLogger(__name__)

# S3_PERMISSION for each way of making media public: Mastodon sends this
# canned ACL with every upload, and none when it is empty.
MASTODON_PERMISSION = {"acl": "public-read", "policy": "", "none": ""}


@dataclass(frozen=True)
class StorageGrant:
    """Where a server's media lives and the key Mastodon uses for it."""

    server_id: uuid.UUID
    bucket: str
    backups_bucket: str
    region: str
    # The S3 API as Mastodon reaches it (scheme, host, optional port).
    endpoint: str
    alias_host: str | None
    path_style: bool
    # What Mastodon sends as S3_PERMISSION ("" for no ACL).
    permission: str
    access_key_id: str
    # Only when this call created the key; otherwise the caller has it.
    secret_access_key: str | None = field(default=None, repr=False)


def storage_names(
    server_id: uuid.UUID, settings: StorageSettings | None = None
) -> ServerStorageNames:
    settings = settings or get_storage_settings()
    return server_storage_names(server_id, settings.bucket_prefix)


def ensure_server_storage(
    server_id: uuid.UUID,
    known_access_key_id: str | None,
    *,
    backup_retention_days: int | None = None,
    settings: StorageSettings | None = None,
) -> StorageGrant:
    """Create what is missing of the server's storage and return its grant.

    Safe to run any number of times: buckets and the user are found by
    name, policies and the expiry rule are rewritten to what the settings
    say, and keys follow the rule in this module's docstring. Retention
    defaults to HERD_S3_BACKUP_RETENTION_DAYS.
    """
    settings = settings or get_storage_settings()
    retention = (
        settings.backup_retention_days if backup_retention_days is None else backup_retention_days
    )
    if retention < 1:
        raise ValueError("backup retention is at least one day")
    backend = backend_for(settings)
    names = server_storage_names(server_id, settings.bucket_prefix)

    # Buckets first: a key handed out must find its bucket in place.
    if backend.buckets.ensure_bucket(names.media_bucket):
        log.info("created media bucket %s for server %s", names.media_bucket, server_id)
    backend.buckets.set_public_access(names.media_bucket, settings.public_read)
    if backend.buckets.ensure_bucket(names.backups_bucket):
        log.info("created backups bucket %s for server %s", names.backups_bucket, server_id)
    backend.buckets.set_public_access(names.backups_bucket, "none")
    backend.buckets.set_expiry(names.backups_bucket, retention)

    if backend.identities.ensure_user(names.user_name, settings.iam_path):
        log.info("created storage user %s for server %s", names.user_name, server_id)
    backend.identities.put_user_policy(
        names.user_name, MEDIA_POLICY_NAME, media_policy(names.media_bucket, settings.partition)
    )
    key_id, secret = _converge_key(backend.identities, names.user_name, known_access_key_id)
    return grant_for(server_id, key_id, secret, names=names, settings=settings)


def grant_for(
    server_id: uuid.UUID,
    access_key_id: str,
    secret_access_key: str | None = None,
    *,
    names: ServerStorageNames | None = None,
    settings: StorageSettings | None = None,
) -> StorageGrant:
    """The grant of a server whose storage exists, without asking the store:
    what a caller that recorded the key needs to configure Mastodon again.
    `names` are the recorded ones, in case the bucket prefix has changed."""
    settings = settings or get_storage_settings()
    names = names or server_storage_names(server_id, settings.bucket_prefix)
    alias = settings.alias_host.format(bucket=names.media_bucket) if settings.alias_host else None
    return StorageGrant(
        server_id=server_id,
        bucket=names.media_bucket,
        backups_bucket=names.backups_bucket,
        region=settings.region,
        endpoint=settings.resolved_public_endpoint_url,
        alias_host=alias,
        path_style=settings.path_style,
        permission=MASTODON_PERMISSION[settings.public_read],
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
    )


def _converge_key(
    identities: Identities, user: str, known_key_id: str | None
) -> tuple[str, str | None]:
    keys = identities.access_keys(user)
    kept = next((key for key in keys if key.key_id == known_key_id), None)
    for key in keys:
        if key is not kept:
            # Its secret is nowhere Herd can read: a crashed run's key, or a
            # key made by hand. Either way nothing of Herd's can use it.
            log.warning("deleting access key %s of %s, unknown to Herd", key.key_id, user)
            identities.delete_access_key(user, key.key_id)
    if kept is not None:
        if not kept.active:
            identities.activate_access_key(user, kept.key_id)
        return kept.key_id, None
    created = identities.create_access_key(user)
    log.info("created access key %s for %s", created.key_id, user)
    return created.key_id, created.secret


def revoke_server_credentials(
    server_id: uuid.UUID, *, settings: StorageSettings | None = None
) -> None:
    """Delete the server's keys and IAM user; its data stays. Idempotent."""
    settings = settings or get_storage_settings()
    names = server_storage_names(server_id, settings.bucket_prefix)
    backend_for(settings).identities.delete_user(names.user_name)
    log.info("revoked storage credentials of server %s", server_id)


def delete_server_data(server_id: uuid.UUID, *, settings: StorageSettings | None = None) -> None:
    """Empty and delete the server's media and backups buckets. Idempotent.

    Revoke the credentials first: Mastodon writing while the bucket empties
    makes this fail with StorageError rather than race forever.
    """
    settings = settings or get_storage_settings()
    names = server_storage_names(server_id, settings.bucket_prefix)
    buckets = backend_for(settings).buckets
    buckets.delete_bucket(names.media_bucket)
    buckets.delete_bucket(names.backups_bucket)
    log.info("deleted media and backups of server %s", server_id)
