"""Object storage settings, from `HERD_S3_*` environment variables.

One S3-compatible service holds every server's media and backups. The
defaults describe AWS (no endpoint, virtual-hosted addressing); Ceph RGW,
Garage or MinIO need `HERD_S3_ENDPOINT_URL` and usually path-style addressing,
which is what "auto" picks whenever an endpoint is set.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from controlplane.settings import PLACEHOLDER_SECRETS
from controlplane.storage.names import MAX_PREFIX_LENGTH

# What makes media readable by visitors:
# - "acl": Mastodon sends S3_PERMISSION=public-read with each upload (its
#   default, and what lets it hide a suspended account's media by making it
#   private); the bucket is created with ACLs enabled.
# - "policy": a bucket policy lets anyone read objects and Mastodon sends no
#   ACL (for stores without ACLs, such as MinIO).
# - "none": nothing public; the alias host (a CDN or proxy with its own
#   access) serves media.
PublicRead = Literal["acl", "policy", "none"]

_PREFIX = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Prefixes S3 reserves for its own bucket kinds (and IDNA's marker).
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
# Credentials copied from documentation or left at a store's factory default
# (AWS's example key pair, MinIO's root account): refused in production, as
# every other placeholder secret is.
PLACEHOLDER_ACCESS_KEY_IDS = frozenset({"akiaiosfodnn7example", "minioadmin"})
PLACEHOLDER_SECRET_ACCESS_KEYS = PLACEHOLDER_SECRETS | {
    "wjalrxutnfemi/k7mdeng/bpxrficyexamplekey",
    "minioadmin",
}


class StorageSettings(BaseSettings):
    # Frozen, so a settings object can key the cache of boto3 clients.
    # Errors leave the input out: a refused model would otherwise print the
    # secret access key (part of it, truncated) into logs and job errors.
    model_config = SettingsConfigDict(
        env_prefix="HERD_S3_",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
        hide_input_in_errors=True,
    )

    # None: storage is on when an endpoint or credentials are set. True
    # turns it on without either (AWS with an instance role); False keeps
    # every new server's media on its host whatever else is set.
    enabled: bool | None = None
    # Where Herd reaches the S3 API; None means AWS in `region`.
    endpoint_url: str | None = None
    # Where Herd reaches the IAM API; None means endpoint_url (Ceph RGW and
    # moto answer IAM on the S3 endpoint), or AWS IAM when that is None too.
    iam_endpoint_url: str | None = None
    # Where Mastodon reaches the S3 API, when hosts see the store under
    # another name than the control plane does; None means endpoint_url.
    public_endpoint_url: str | None = None
    region: str = "us-east-1"
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    # Herd's own credentials, which create buckets, users and keys. None
    # leaves them to boto3's usual chain (environment, instance role).
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = Field(default=None, repr=False)
    # Names of buckets and IAM users start with this, so several Herd
    # deployments (staging, production) can share one account.
    bucket_prefix: str = "herd-"
    # IAM path of the users Herd creates; Herd's admin policy can be limited
    # to arn:aws:iam::ACCOUNT:user/herd/*.
    iam_path: str = "/herd/"
    # ARN partition: "aws", or "aws-cn" / "aws-us-gov" in those regions.
    partition: str = "aws"
    public_read: PublicRead = "acl"
    # The host (and optional path) visitors fetch media from, e.g. a CDN;
    # "{bucket}" is replaced by the server's media bucket.
    alias_host: str | None = None
    backup_retention_days: int = Field(default=30, ge=1, le=3650)
    # How long a deleted server's buckets (media and backups) stay before
    # Herd deletes them: the window in which an organisation that left can
    # still ask for its data.
    data_retention_days: int = Field(default=30, ge=0, le=3650)
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    # Attempts per call, the first included; botocore backs off between them.
    max_attempts: int = Field(default=3, ge=1, le=10)
    # Shared with the rest of Herd: production refuses placeholder credentials.
    environment: Literal["development", "production"] = Field(
        default="development", validation_alias="HERD_ENVIRONMENT"
    )

    @field_validator("bucket_prefix")
    @classmethod
    def _valid_prefix(cls, value: str) -> str:
        if len(value) > MAX_PREFIX_LENGTH:
            raise ValueError(f"at most {MAX_PREFIX_LENGTH} characters, so names fit in 63")
        if not _PREFIX.match(value) or value.startswith(_RESERVED_PREFIXES):
            raise ValueError(
                "lowercase letters, digits and hyphens, starting with a letter or digit"
            )
        return value

    @field_validator("iam_path")
    @classmethod
    def _valid_path(cls, value: str) -> str:
        if not (value.startswith("/") and value.endswith("/")):
            raise ValueError("an IAM path starts and ends with '/'")
        return value

    @field_validator("endpoint_url", "iam_endpoint_url", "public_endpoint_url")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL with a host")
        return value.rstrip("/")

    @field_validator("alias_host")
    @classmethod
    def _valid_alias(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Mastodon puts its own scheme (S3_PROTOCOL) in front of the alias.
        if "://" in value:
            raise ValueError("a host and optional path, without a scheme")
        try:
            value.format(bucket="b")
        except (AttributeError, KeyError, IndexError, ValueError) as exc:
            raise ValueError("the only placeholder is {bucket}") from exc
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials_in_pairs(self) -> StorageSettings:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("set both HERD_S3_ACCESS_KEY_ID and HERD_S3_SECRET_ACCESS_KEY")
        return self

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> StorageSettings:
        if self.environment != "production":
            return self
        if (self.access_key_id or "").strip().lower() in PLACEHOLDER_ACCESS_KEY_IDS:
            raise ValueError("HERD_S3_ACCESS_KEY_ID is a placeholder; create a key for Herd")
        secret = self.secret_access_key.get_secret_value() if self.secret_access_key else ""
        if secret.strip().lower() in PLACEHOLDER_SECRET_ACCESS_KEYS:
            raise ValueError("HERD_S3_SECRET_ACCESS_KEY is a placeholder; create a key for Herd")
        return self

    @property
    def configured(self) -> bool:
        """Whether servers get object storage; when not, media stays on hosts."""
        if self.enabled is not None:
            return self.enabled
        return self.endpoint_url is not None or self.access_key_id is not None

    @property
    def path_style(self) -> bool:
        if self.addressing_style == "auto":
            return self.endpoint_url is not None
        return self.addressing_style == "path"

    @property
    def resolved_iam_endpoint_url(self) -> str | None:
        return self.iam_endpoint_url or self.endpoint_url

    @property
    def resolved_public_endpoint_url(self) -> str:
        return (
            self.public_endpoint_url
            or self.endpoint_url
            or f"https://s3.{self.region}.amazonaws.com"
        )


@lru_cache
def get_storage_settings() -> StorageSettings:
    return StorageSettings()
