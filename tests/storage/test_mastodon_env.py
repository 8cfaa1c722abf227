"""The variables Mastodon reads its storage from (config/initializers/paperclip.rb)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from controlplane.storage import StorageGrant, mastodon_env

GRANT = StorageGrant(
    server_id=uuid.UUID(int=1),
    bucket="herd-00000000000000000000000000000001-media",
    backups_bucket="herd-00000000000000000000000000000001-backups",
    region="garage",
    endpoint="http://s3.internal.provider.example:3900",
    alias_host=None,
    path_style=True,
    permission="public-read",
    access_key_id="GK0123",
    secret_access_key="s3cr3t",
)


def test_a_path_style_store_without_alias() -> None:
    assert mastodon_env(GRANT) == {
        "S3_ENABLED": "true",
        "S3_BUCKET": GRANT.bucket,
        "S3_REGION": "garage",
        "S3_ENDPOINT": "http://s3.internal.provider.example:3900",
        "S3_PROTOCOL": "http",
        "S3_HOSTNAME": "s3.internal.provider.example:3900",
        # "false": Mastodon keeps forcing path style.
        "S3_OVERRIDE_PATH_STYLE": "false",
        "S3_PERMISSION": "public-read",
        "AWS_ACCESS_KEY_ID": "GK0123",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t",
    }


def test_an_alias_host_is_served_over_https() -> None:
    grant = dataclasses.replace(GRANT, alias_host="media.provider.example/" + GRANT.bucket)
    env = mastodon_env(grant)
    assert env["S3_ALIAS_HOST"] == "media.provider.example/" + GRANT.bucket
    assert env["S3_PROTOCOL"] == "https"
    assert env["S3_ENDPOINT"] == GRANT.endpoint  # Mastodon still writes to the store


def test_virtual_hosted_aws_and_no_acl() -> None:
    grant = dataclasses.replace(
        GRANT,
        endpoint="https://s3.eu-central-1.amazonaws.com",
        region="eu-central-1",
        path_style=False,
        permission="",
    )
    env = mastodon_env(grant)
    assert env["S3_OVERRIDE_PATH_STYLE"] == "true"
    assert env["S3_HOSTNAME"] == "s3.eu-central-1.amazonaws.com"
    assert env["S3_PERMISSION"] == ""  # Mastodon sends no ACL
    assert "S3_ALIAS_HOST" not in env  # present-but-empty would break every URL


def test_a_grant_without_its_secret_takes_the_stored_one() -> None:
    known = dataclasses.replace(GRANT, secret_access_key=None)
    assert mastodon_env(known, "stored")["AWS_SECRET_ACCESS_KEY"] == "stored"
    with pytest.raises(ValueError, match="GK0123"):
        mastodon_env(known)
