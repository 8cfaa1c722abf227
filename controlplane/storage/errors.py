"""Herd's object storage exceptions, and the one place botocore's are
translated into them.

Callers tell two cases apart: StorageUnavailable passes (retry later, as a
task's retry rule does), any other StorageError needs a person (bad
credentials, a bucket name another account owns, a store without IAM).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

from controlplane.problems import HerdError

# Answers that say "not now" rather than "no".
TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "ServiceUnavailable",
        "SlowDown",
        "RequestTimeout",
        "Throttling",
        "ThrottlingException",
        "ServiceFailure",
        "500",
        "502",
        "503",
        "504",
    }
)


class StorageError(HerdError):
    """The object store refused, or answered in a way Herd cannot use."""

    status, kind, title = 502, "storage-error", "Object storage error"

    @property
    def code(self) -> str:
        """The store's error code ("NoSuchBucket"), or "" when it gave none."""
        return str(self.extra.get("code", ""))


class StorageUnavailable(StorageError):
    """The object store could not be reached or asked to come back later."""

    status, kind, title = 503, "storage-unavailable", "Object storage unavailable"


class StorageNotConfigured(StorageError):
    """Object storage is needed and HERD_S3_* does not set it up."""

    status, kind, title = 503, "storage-not-configured", "Object storage not configured"


class BucketNameTaken(StorageError):
    """A bucket with a server's name exists and is not Herd's (S3 bucket
    names are global on AWS)."""

    status, kind, title = 409, "bucket-name-taken", "Bucket name taken"


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Run botocore calls, raising Herd's exceptions instead of botocore's.
    `doing` completes "... failed", e.g. "creating bucket herd-1-media"."""
    try:
        yield
    except ClientError as exc:
        code = error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        message = exc.response.get("Error", {}).get("Message", "")
        said = f"{code or status}: {message}" if message else str(code or status)
        # 501 is the one 5xx that will not pass: the store lacks the call.
        if code in TRANSIENT_CODES or (status >= 500 and status != 501):
            raise StorageUnavailable(f"{doing} failed: {said}", code=code) from exc
        raise StorageError(f"{doing} failed: {said}", code=code) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        # Connection refused, DNS, TLS and timeouts all land here; the text
        # names the endpoint, which is configuration, not a secret.
        raise StorageUnavailable(f"{doing} failed: {exc}") from exc
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise StorageError(
            f"{doing} failed: no object storage credentials (set HERD_S3_ACCESS_KEY_ID "
            "and HERD_S3_SECRET_ACCESS_KEY)"
        ) from exc
    except BotoCoreError as exc:
        raise StorageError(f"{doing} failed: {exc}") from exc
