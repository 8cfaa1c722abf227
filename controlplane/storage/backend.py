"""The narrow interface Herd's storage service needs from an object store,
and the choice of implementation.

Two halves, because S3-compatible stores agree on buckets but not on
credentials: AWS and Ceph RGW (Squid's accounts) speak the IAM API, while
MinIO and Garage issue keys through admin APIs of their own. Today both
halves are boto3 (S3 and IAM); a store without IAM needs another
`Identities` and nothing else changes.

Every method is idempotent and raises only StorageError and its kinds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol

from controlplane.storage.settings import PublicRead, StorageSettings


@dataclass(frozen=True)
class AccessKey:
    key_id: str
    active: bool


@dataclass(frozen=True)
class NewAccessKey:
    key_id: str
    secret: str = field(repr=False)


class Buckets(Protocol):
    def ensure_bucket(self, name: str) -> bool:
        """Create the bucket unless it is already Herd's; True if created."""
        ...

    def set_public_access(self, bucket: str, mode: PublicRead) -> None:
        """Make objects readable by anyone the way `mode` says, or by no one
        ("none")."""
        ...

    def set_expiry(self, bucket: str, days: int) -> None:
        """Expire every object `days` after it was written."""
        ...

    def delete_bucket(self, name: str) -> None:
        """Delete every object (and version) and then the bucket; a missing
        bucket is already deleted."""
        ...


class Identities(Protocol):
    def ensure_user(self, name: str, path: str) -> bool:
        """Create the user unless it exists; True if created."""
        ...

    def put_user_policy(self, user: str, policy_name: str, document: str) -> None: ...

    def access_keys(self, user: str) -> list[AccessKey]:
        """The user's keys, active or not; none for a missing user."""
        ...

    def create_access_key(self, user: str) -> NewAccessKey: ...

    def activate_access_key(self, user: str, key_id: str) -> None: ...

    def delete_access_key(self, user: str, key_id: str) -> None: ...

    def delete_user(self, user: str) -> None:
        """Delete the user's keys, its inline policies and the user."""
        ...


@dataclass(frozen=True)
class Backend:
    buckets: Buckets
    identities: Identities


@lru_cache(maxsize=8)
def backend_for(settings: StorageSettings) -> Backend:
    # Imported here because the implementations import this module's types.
    from controlplane.storage.iam import IamIdentities
    from controlplane.storage.s3 import S3Buckets

    return Backend(S3Buckets(settings), IamIdentities(settings))
