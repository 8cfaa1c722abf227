"""Per-server object storage on any S3-compatible service: a media bucket
and a key for Mastodon, and a backups bucket with a retention period.

The rest of Herd uses what this module exports and catches StorageError;
nothing outside this package imports boto3's S3 or IAM clients or catches
botocore's exceptions.
"""

from controlplane.storage.errors import (
    BucketNameTaken,
    StorageError,
    StorageNotConfigured,
    StorageUnavailable,
)
from controlplane.storage.grants import ensure_grant, grant_secrets, storage_variables
from controlplane.storage.mastodon import mastodon_env
from controlplane.storage.models import ServerStorage
from controlplane.storage.names import ServerStorageNames
from controlplane.storage.service import (
    StorageGrant,
    delete_server_data,
    ensure_server_storage,
    grant_for,
    revoke_server_credentials,
    storage_names,
)
from controlplane.storage.settings import StorageSettings, get_storage_settings

__all__ = [
    "BucketNameTaken",
    "ServerStorage",
    "ServerStorageNames",
    "StorageError",
    "StorageGrant",
    "StorageNotConfigured",
    "StorageSettings",
    "StorageUnavailable",
    "delete_server_data",
    "ensure_grant",
    "ensure_server_storage",
    "get_storage_settings",
    "grant_for",
    "grant_secrets",
    "mastodon_env",
    "revoke_server_credentials",
    "storage_names",
    "storage_variables",
]
