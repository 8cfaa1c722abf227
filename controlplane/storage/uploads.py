"""Letting a host write its backup without holding any credential."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from controlplane.storage.clients import presigning_client
from controlplane.storage.errors import StorageError
from controlplane.storage.settings import StorageSettings


def presigned_backup_upload(
    settings: StorageSettings, bucket: str, prefix: str, expires_seconds: int = 3600
) -> dict[str, Any]:
    """A presigned POST that lets its bearer write objects under ``prefix``
    in ``bucket`` until it expires, and do nothing else. Signed with Herd's
    own key, which never leaves the control plane; the URL is the endpoint
    the hosts reach (HERD_S3_PUBLIC_ENDPOINT_URL when it differs)."""
    try:
        # A key ending in ${filename} makes boto3 sign a starts-with
        # condition on the prefix instead of one exact key.
        post = presigning_client(settings).generate_presigned_post(
            Bucket=bucket, Key=prefix + "${filename}", ExpiresIn=expires_seconds
        )
    except (BotoCoreError, ClientError, ValueError) as exc:
        raise StorageError(f"could not sign the backup upload: {exc}") from exc
    fields = {k: v for k, v in post["fields"].items() if k != "key"}
    return {"url": post["url"], "fields": fields, "prefix": prefix}
