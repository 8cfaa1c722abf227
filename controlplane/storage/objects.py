"""Reading what a bucket holds: its objects' keys, sizes and times, and a
small object's bytes (a backup's manifest). Herd's own credentials; a
missing bucket or object reads as empty, not as an error."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from botocore.exceptions import ClientError

from controlplane.storage.clients import s3_client
from controlplane.storage.errors import StorageError, error_code, translated
from controlplane.storage.s3 import MISSING_BUCKET_CODES
from controlplane.storage.settings import StorageSettings

MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    last_modified: datetime


def list_objects(settings: StorageSettings, bucket: str, prefix: str = "") -> list[StoredObject]:
    """Every object under ``prefix``, in key order; none for a missing bucket."""
    found: list[StoredObject] = []
    with translated(f"listing bucket {bucket}"):
        try:
            pages = s3_client(settings).get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=bucket, Prefix=prefix):
                found.extend(
                    StoredObject(item["Key"], int(item["Size"]), item["LastModified"])
                    for item in page.get("Contents", [])
                )
        except ClientError as exc:
            if error_code(exc) in MISSING_BUCKET_CODES:
                return []
            raise
    return found


def read_object(settings: StorageSettings, bucket: str, key: str, max_bytes: int) -> bytes | None:
    """A small object's bytes, None when it is missing; refused past
    ``max_bytes`` (a manifest is a few hundred bytes)."""
    with translated(f"reading {key} in bucket {bucket}"):
        try:
            answer = s3_client(settings).get_object(
                Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes}"
            )
        except ClientError as exc:
            code = error_code(exc)
            if code in MISSING_OBJECT_CODES | MISSING_BUCKET_CODES:
                return None
            if code == "InvalidRange":  # an empty object
                return b""
            raise
        data: bytes = answer["Body"].read()
    if len(data) > max_bytes:
        raise StorageError(f"{key} in bucket {bucket} is larger than {max_bytes} bytes")
    return data
