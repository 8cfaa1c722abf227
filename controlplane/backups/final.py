"""A server's backups in its backups bucket: the final backup taken when the
server is cancelled (provisioning/steps/billing.py uploads it under
``final/``), and any other folder a backup was uploaded to. One backup is
the objects under one top-level prefix; its manifest gives the release."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from controlplane.backups.report import MANIFEST, manifest_time, parse_manifest
from controlplane.storage import ServerStorage, get_storage_settings
from controlplane.storage.objects import StoredObject, list_objects, read_object

MANIFEST_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class StoredBackup:
    label: str
    version: str
    taken_at: datetime
    size_bytes: int
    files: tuple[str, ...]
    bucket: str


def final_backups(session: Session, server_id: uuid.UUID) -> list[StoredBackup]:
    """The server's backups in object storage, newest first; none when Herd
    has no object storage or the server never had a bucket. Raises
    StorageError when the store cannot be read."""
    settings = get_storage_settings()
    grant = session.get(ServerStorage, server_id)
    if grant is None or not settings.configured:
        return []
    bucket = grant.backups_bucket
    groups: dict[str, list[StoredObject]] = {}
    for item in list_objects(settings, bucket):
        label, _, rest = item.key.partition("/")
        if rest:  # a stray object at the top is not a backup
            groups.setdefault(label, []).append(item)
    backups = []
    for label, items in groups.items():
        names = {item.key.partition("/")[2] for item in items}
        manifest = (
            parse_manifest(read_object(settings, bucket, f"{label}/{MANIFEST}", MANIFEST_MAX_BYTES))
            if MANIFEST in names
            else None
        )
        listed = (manifest or {}).get("files")
        backups.append(
            StoredBackup(
                label=label,
                version=str((manifest or {}).get("version", "")),
                taken_at=manifest_time(manifest) or max(i.last_modified for i in items),
                size_bytes=sum(i.size for i in items),
                files=tuple(str(f) for f in listed)
                if isinstance(listed, list)
                else tuple(sorted(names - {MANIFEST})),
                bucket=bucket,
            )
        )
    return sorted(backups, key=lambda b: (b.taken_at, b.label), reverse=True)
