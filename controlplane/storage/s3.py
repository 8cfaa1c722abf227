"""Buckets through boto3's S3 client: AWS, Ceph RGW, Garage, MinIO."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

from botocore.exceptions import ClientError

from controlplane.storage.clients import s3_client
from controlplane.storage.errors import BucketNameTaken, StorageError, error_code, translated
from controlplane.storage.names import public_read_policy
from controlplane.storage.settings import PublicRead, StorageSettings

EXPIRY_RULE_ID = "herd-retention"
# Answers of stores that lack a bucket feature (Garage and MinIO have no
# public access block or ownership controls). Where a feature is missing,
# nothing it would block exists either, so skipping it is right.
UNSUPPORTED_CODES = frozenset({"NotImplemented", "MethodNotAllowed", "UnsupportedOperation"})
MISSING_BUCKET_CODES = frozenset({"404", "NoSuchBucket", "NotFound"})
DELETE_BATCH = 1000  # DeleteObjects' limit
EMPTY_ATTEMPTS = 3


class S3Buckets:
    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings

    @property
    def _client(self) -> Any:
        return s3_client(self._settings)

    def ensure_bucket(self, name: str) -> bool:
        if self._exists(name):
            return False
        arguments: dict[str, Any] = {"Bucket": name}
        # us-east-1 is the one region S3 refuses to be named in.
        if self._settings.region != "us-east-1":
            arguments["CreateBucketConfiguration"] = {"LocationConstraint": self._settings.region}
        try:
            with translated(f"creating bucket {name}"):
                self._client.create_bucket(**arguments)
        except StorageError as exc:
            if exc.code == "BucketAlreadyOwnedByYou":
                return False  # another worker won the race
            if exc.code == "BucketAlreadyExists":
                raise BucketNameTaken(
                    f"bucket {name} belongs to another account; choose another "
                    "HERD_S3_BUCKET_PREFIX"
                ) from exc
            raise
        return True

    def _exists(self, name: str) -> bool:
        # Not HeadBucket: its answers have no body, so a refused signature
        # and another account's bucket would both be a bare 403.
        with translated(f"looking for bucket {name}"):
            try:
                self._client.get_bucket_location(Bucket=name)
            except ClientError as exc:
                code = error_code(exc)
                if code in MISSING_BUCKET_CODES:
                    return False
                if code == "AccessDenied":
                    raise BucketNameTaken(
                        f"bucket {name} exists but Herd may not use it: another account "
                        "owns the name, or Herd's credentials lack s3:GetBucketLocation on it"
                    ) from exc
                raise
        return True

    def set_public_access(self, bucket: str, mode: PublicRead) -> None:
        block_acls = mode != "acl"
        block_policy = mode != "policy"
        if mode == "acl":
            # ACLs must be enabled for Mastodon's public-read uploads; AWS
            # creates buckets with them disabled since 2023.
            self._optional(
                f"enabling ACLs on bucket {bucket}",
                self._client.put_bucket_ownership_controls,
                Bucket=bucket,
                OwnershipControls={"Rules": [{"ObjectOwnership": "BucketOwnerPreferred"}]},
            )
        self._optional(
            f"setting the public access block of bucket {bucket}",
            self._client.put_public_access_block,
            Bucket=bucket,
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": block_acls,
                "IgnorePublicAcls": block_acls,
                "BlockPublicPolicy": block_policy,
                "RestrictPublicBuckets": block_policy,
            },
        )
        if mode == "policy":
            policy = public_read_policy(bucket, self._settings.partition)
            with translated(f"setting the policy of bucket {bucket}"):
                self._client.put_bucket_policy(Bucket=bucket, Policy=policy)
        else:
            # A policy left from an earlier "policy" setting would keep
            # media public.
            self._optional(
                f"removing the policy of bucket {bucket}",
                self._client.delete_bucket_policy,
                ignore={"NoSuchBucketPolicy"},
                Bucket=bucket,
            )

    def set_expiry(self, bucket: str, days: int) -> None:
        rule = {
            "ID": EXPIRY_RULE_ID,
            "Filter": {"Prefix": ""},
            "Status": "Enabled",
            "Expiration": {"Days": days},
            # A backup cut off mid-upload leaves parts that are billed but
            # invisible to listings; a day is long enough for any upload.
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
        }
        with translated(f"setting the expiry of bucket {bucket}"):
            self._client.put_bucket_lifecycle_configuration(
                Bucket=bucket, LifecycleConfiguration={"Rules": [rule]}
            )

    def delete_bucket(self, name: str) -> None:
        # A writer that still holds credentials can refill the bucket between
        # emptying and deleting; a few rounds cover a straggler, not a live
        # server (revoke its credentials first).
        for _ in range(EMPTY_ATTEMPTS):
            try:
                with translated(f"deleting bucket {name}"):
                    self._empty(name)
                    self._client.delete_bucket(Bucket=name)
                return
            except StorageError as exc:
                if exc.code in MISSING_BUCKET_CODES:
                    return
                if exc.code != "BucketNotEmpty":
                    raise
        raise StorageError(
            f"bucket {name} kept filling while Herd emptied it; "
            "revoke the server's credentials, then delete again"
        )

    def _empty(self, name: str) -> None:
        versioning = self._client.get_bucket_versioning(Bucket=name).get("Status")
        for batch in _batches(self._objects(name, versioned=bool(versioning))):
            answer = self._client.delete_objects(
                Bucket=name, Delete={"Objects": batch, "Quiet": True}
            )
            failed = [e for e in answer.get("Errors", []) if e.get("Code") != "NoSuchKey"]
            if failed:
                first = failed[0]
                raise StorageError(
                    f"deleting {len(failed)} objects of bucket {name} failed, "
                    f"first {first.get('Key')}: {first.get('Code')}",
                    code=first.get("Code", ""),
                )
        paginator = self._client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=name):
            for upload in page.get("Uploads", []):
                try:
                    self._client.abort_multipart_upload(
                        Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                except ClientError as exc:
                    if error_code(exc) != "NoSuchUpload":
                        raise

    def _objects(self, name: str, *, versioned: bool) -> Iterator[dict[str, str]]:
        if versioned:
            paginator = self._client.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=name):
                for item in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    yield {"Key": item["Key"], "VersionId": item["VersionId"]}
        else:
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=name):
                for item in page.get("Contents", []):
                    yield {"Key": item["Key"]}

    def _optional(
        self, doing: str, call: Any, ignore: Collection[str] = (), **arguments: Any
    ) -> None:
        with translated(doing):
            try:
                call(**arguments)
            except ClientError as exc:
                code = error_code(exc)
                if code not in UNSUPPORTED_CODES and code not in ignore:
                    raise


def _batches(items: Iterator[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    batch: list[dict[str, str]] = []
    for item in items:
        batch.append(item)
        if len(batch) == DELETE_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch
