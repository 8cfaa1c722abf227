"""What a server's storage is called, and what its credentials may do.

Everything is derived from the server's id, so any worker finds what an
earlier (perhaps crashed) run created without reading it back from the
database first.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

MEDIA_SUFFIX = "-media"
BACKUPS_SUFFIX = "-backups"
# S3 bucket names are at most 63 characters; a UUID's hex is 32.
MAX_PREFIX_LENGTH = 63 - 32 - max(len(MEDIA_SUFFIX), len(BACKUPS_SUFFIX))
MEDIA_POLICY_NAME = "herd-media"

# What Mastodon does with its bucket: list it (tootctl media remove-orphans),
# read, write and delete objects, set their ACL (public-read on upload,
# private when an account is suspended), and upload large files in parts.
BUCKET_ACTIONS = ("s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketLocation")
OBJECT_ACTIONS = (
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:GetObjectAcl",
    "s3:PutObjectAcl",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
)


@dataclass(frozen=True)
class ServerStorageNames:
    media_bucket: str
    backups_bucket: str
    user_name: str


def server_storage_names(server_id: uuid.UUID, prefix: str) -> ServerStorageNames:
    # Lowercase hex only: valid in bucket and IAM user names alike, with no
    # dots (which break TLS for virtual-hosted buckets).
    stem = f"{prefix}{server_id.hex}"
    return ServerStorageNames(
        media_bucket=stem + MEDIA_SUFFIX,
        backups_bucket=stem + BACKUPS_SUFFIX,
        user_name=stem,
    )


def media_policy(bucket: str, partition: str = "aws") -> str:
    """The inline policy of a server's IAM user: its media bucket and nothing
    else. Backups are written with Herd's credentials, not Mastodon's, so a
    compromised host cannot delete or overwrite its own backups."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "MediaBucket",
                "Effect": "Allow",
                "Action": list(BUCKET_ACTIONS),
                "Resource": bucket_arn,
            },
            {
                "Sid": "MediaObjects",
                "Effect": "Allow",
                "Action": list(OBJECT_ACTIONS),
                "Resource": f"{bucket_arn}/*",
            },
        ],
    }
    return json.dumps(document, separators=(",", ":"))


def public_read_policy(bucket: str, partition: str = "aws") -> str:
    """A bucket policy letting anyone read (not list) a media bucket's
    objects: what visitors' browsers and other servers need."""
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "PublicReadMedia",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:{partition}:s3:::{bucket}/*",
            }
        ],
    }
    return json.dumps(document, separators=(",", ":"))
