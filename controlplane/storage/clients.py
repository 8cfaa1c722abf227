"""boto3 clients for the S3 and IAM APIs, built once per settings."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

from controlplane.storage.errors import StorageError
from controlplane.storage.settings import StorageSettings

# botocore logs every response body at DEBUG, and IAM's CreateAccessKey answer
# holds the new secret key: that logger stays quiet whatever level is on.
logging.getLogger("botocore.parsers").setLevel(logging.INFO)


def _config(settings: StorageSettings, **extra: Any) -> Config:
    return Config(
        region_name=settings.region,
        connect_timeout=settings.connect_timeout_seconds,
        read_timeout=settings.read_timeout_seconds,
        retries={"mode": "standard", "max_attempts": settings.max_attempts},
        # boto3 1.36 began sending CRC checksums on every upload, which many
        # S3-compatible stores refuse (boto/boto3#4392). "when_required"
        # still sends one where the API demands it (DeleteObjects).
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        **extra,
    )


def _session(settings: StorageSettings) -> boto3.session.Session:
    # A session of its own: boto3's default session is shared module state
    # and not safe to build clients from in several threads at once.
    secret = settings.secret_access_key
    return boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=secret.get_secret_value() if secret else None,
        region_name=settings.region,
    )


@lru_cache(maxsize=8)
def s3_client(settings: StorageSettings) -> Any:
    style = "path" if settings.path_style else "virtual"
    try:
        return _session(settings).client(
            "s3",
            endpoint_url=settings.endpoint_url,
            config=_config(settings, s3={"addressing_style": style}),
        )
    except ValueError as exc:  # botocore's answer to a malformed endpoint or region
        raise StorageError(f"the S3 settings are not usable: {exc}") from exc


@lru_cache(maxsize=8)
def iam_client(settings: StorageSettings) -> Any:
    try:
        return _session(settings).client(
            "iam", endpoint_url=settings.resolved_iam_endpoint_url, config=_config(settings)
        )
    except ValueError as exc:
        raise StorageError(f"the IAM settings are not usable: {exc}") from exc


@lru_cache(maxsize=8)
def presigning_client(settings: StorageSettings) -> Any:
    """An S3 client on the endpoint the hosts reach (which may differ from
    the one Herd uses), for signing URLs that hosts will call."""
    style = "path" if settings.path_style else "virtual"
    try:
        return _session(settings).client(
            "s3",
            endpoint_url=settings.resolved_public_endpoint_url,
            config=_config(settings, s3={"addressing_style": style}),
        )
    except ValueError as exc:
        raise StorageError(f"the S3 settings are not usable: {exc}") from exc
