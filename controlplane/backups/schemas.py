from __future__ import annotations

import uuid
from datetime import datetime

from controlplane.schemas import Output


class HostBackupOut(Output):
    label: str
    # The release it was taken at ("v4.5.1"); "" when its manifest is missing.
    version: str
    commit: str
    taken_at: datetime
    size_bytes: int
    files: list[str]
    # False for a backup that did not finish (no manifest).
    complete: bool
    # Copied elsewhere by the backup role's upload command.
    uploaded: bool


class StoredBackupOut(Output):
    label: str
    version: str
    taken_at: datetime
    size_bytes: int
    files: list[str]
    bucket: str


class BackupsOut(Output):
    server_id: uuid.UUID
    # The last successful `backups` job, and when it finished; null until one has run.
    checked_by_job: uuid.UUID | None
    checked_at: datetime | None
    on_host: list[HostBackupOut]
    # A `backups` job not finished yet.
    refresh_job_id: uuid.UUID | None
    # Final backups in the server's backups bucket.
    in_storage: list[StoredBackupOut]
    # Why object storage could not be listed, when it could not.
    storage_error: str | None
