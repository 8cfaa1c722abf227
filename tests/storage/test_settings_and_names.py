"""Names derived from server ids, the media policy, the settings' checks, and
the translation of the store's answers."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from controlplane.storage import (
    StorageError,
    StorageSettings,
    StorageUnavailable,
    get_storage_settings,
)
from controlplane.storage.errors import translated
from controlplane.storage.names import (
    MAX_PREFIX_LENGTH,
    OBJECT_ACTIONS,
    media_policy,
    server_storage_names,
)

# S3's rules for bucket names, without dots (Herd never uses them).
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


@pytest.mark.parametrize("prefix", ["", "herd-", "a" * MAX_PREFIX_LENGTH])
def test_names_are_valid_deterministic_and_distinct(prefix: str) -> None:
    server = uuid.UUID("0190f1f2-0000-7000-8000-00000000abcd")
    names = server_storage_names(server, prefix)
    assert names == server_storage_names(server, prefix)
    for bucket in (names.media_bucket, names.backups_bucket):
        assert BUCKET_NAME.match(bucket), bucket
        assert len(bucket) <= 63
    assert names.media_bucket != names.backups_bucket
    assert re.fullmatch(r"[\w+=,.@-]{1,64}", names.user_name)
    other = server_storage_names(uuid.UUID(int=server.int + 1), prefix)
    assert other.media_bucket != names.media_bucket


def test_the_media_policy_names_only_its_bucket() -> None:
    document = json.loads(media_policy("herd-1-media"))
    resources = [statement["Resource"] for statement in document["Statement"]]
    assert resources == ["arn:aws:s3:::herd-1-media", "arn:aws:s3:::herd-1-media/*"]
    [objects] = [s for s in document["Statement"] if s["Resource"].endswith("/*")]
    assert set(objects["Action"]) == set(OBJECT_ACTIONS)
    assert {"s3:PutObjectAcl", "s3:DeleteObject"} <= set(OBJECT_ACTIONS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bucket_prefix", "a" * (MAX_PREFIX_LENGTH + 1)),
        ("bucket_prefix", "Herd-"),
        ("bucket_prefix", "-herd"),
        ("bucket_prefix", "herd.media-"),
        ("bucket_prefix", "xn--herd-"),
        ("iam_path", "herd"),
        ("endpoint_url", "s3.provider.example"),
        ("alias_host", "https://media.provider.example"),
        ("alias_host", "media.provider.example/{server}"),
        ("backup_retention_days", 0),
        ("public_read", "public"),
    ],
)
def test_bad_settings_are_refused(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        StorageSettings(**{field: value})


def test_admin_credentials_come_in_pairs() -> None:
    with pytest.raises(ValidationError, match="both"):
        StorageSettings(access_key_id="AKIAIOSFODNN7EXAMPLE")


def test_settings_come_from_herd_s3_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERD_S3_ENDPOINT_URL", "https://rgw.provider.example/")
    monkeypatch.setenv("HERD_S3_REGION", "default")
    monkeypatch.setenv("HERD_S3_ALIAS_HOST", "{bucket}.media.provider.example")
    monkeypatch.setenv("HERD_S3_SECRET_ACCESS_KEY", "from-env")
    monkeypatch.setenv("HERD_S3_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
    get_storage_settings.cache_clear()
    try:
        settings = get_storage_settings()
    finally:
        get_storage_settings.cache_clear()
    assert settings.endpoint_url == "https://rgw.provider.example"
    assert settings.resolved_iam_endpoint_url == "https://rgw.provider.example"
    assert settings.resolved_public_endpoint_url == "https://rgw.provider.example"
    assert settings.path_style  # "auto" with an endpoint
    assert "from-env" not in repr(settings)


def test_aws_defaults_to_virtual_hosted_addressing() -> None:
    settings = StorageSettings(region="eu-west-3")
    assert not settings.path_style
    assert settings.resolved_public_endpoint_url == "https://s3.eu-west-3.amazonaws.com"
    assert settings.resolved_iam_endpoint_url is None


def _client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "said the store"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "PutObject")


@pytest.mark.parametrize(
    ("code", "status", "unavailable"),
    [
        ("SlowDown", 503, True),
        ("InternalError", 500, True),
        ("", 502, True),
        ("NotImplemented", 501, False),
        ("AccessDenied", 403, False),
        ("NoSuchBucket", 404, False),
    ],
)
def test_store_answers_become_herds_errors(code: str, status: int, unavailable: bool) -> None:
    with pytest.raises(StorageError) as caught, translated("writing"):
        raise _client_error(code, status)
    assert isinstance(caught.value, StorageUnavailable) is unavailable
    assert caught.value.code == code
    assert caught.value.detail.startswith("writing failed")
