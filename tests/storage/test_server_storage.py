"""A server's buckets, user and key: the real boto3 against moto with IAM
enforced, so every "refused" below is moto evaluating the user's policy."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from controlplane.ids import uuid7
from controlplane.storage import (
    BucketNameTaken,
    StorageError,
    StorageGrant,
    StorageUnavailable,
    delete_server_data,
    ensure_server_storage,
    revoke_server_credentials,
    storage_names,
)
from controlplane.storage.settings import StorageSettings
from tests.moto import Moto, free_port


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _as_server(moto: Moto, grant: StorageGrant) -> Any:
    assert grant.secret_access_key
    return moto.client("s3", grant.access_key_id, grant.secret_access_key)


def _herd_users(moto: Moto) -> list[str]:
    users = moto.admin("iam").list_users(PathPrefix="/herd/")["Users"]
    return sorted(user["UserName"] for user in users)


def _keys(moto: Moto, user: str) -> list[str]:
    answer = moto.admin("iam").list_access_keys(UserName=user)
    return [key["AccessKeyId"] for key in answer["AccessKeyMetadata"]]


def _buckets(moto: Moto) -> dict[str, Any]:
    return {b["Name"]: b["CreationDate"] for b in moto.admin("s3").list_buckets()["Buckets"]}


def test_two_servers_get_their_own_buckets_and_users(moto: Moto) -> None:
    settings = moto.settings()
    a, b = uuid7(), uuid7()
    grant_a = ensure_server_storage(a, None, settings=settings)
    grant_b = ensure_server_storage(b, None, settings=settings)

    names_a, names_b = storage_names(a, settings), storage_names(b, settings)
    assert grant_a.bucket == names_a.media_bucket == f"test-{a.hex}-media"
    assert grant_a.backups_bucket == names_a.backups_bucket
    assert sorted(_buckets(moto)) == sorted(
        [names_a.media_bucket, names_a.backups_bucket, names_b.media_bucket, names_b.backups_bucket]
    )
    assert _herd_users(moto) == sorted([names_a.user_name, names_b.user_name])
    assert _keys(moto, names_a.user_name) == [grant_a.access_key_id]
    assert _keys(moto, names_b.user_name) == [grant_b.access_key_id]
    assert grant_a.secret_access_key
    assert grant_b.secret_access_key
    assert grant_a.endpoint == moto.url
    assert (grant_a.region, grant_a.path_style) == ("eu-central-1", True)


def test_a_servers_key_reaches_its_media_bucket_and_nothing_else(moto: Moto) -> None:
    settings = moto.settings()
    grant_a = ensure_server_storage(uuid7(), None, settings=settings)
    grant_b = ensure_server_storage(uuid7(), None, settings=settings)
    s3 = _as_server(moto, grant_a)

    # What Mastodon does: upload with a public-read ACL, read, list, change
    # an ACL (suspension), delete.
    s3.put_object(Bucket=grant_a.bucket, Key="media/1.png", Body=b"a", ACL="public-read")
    assert s3.get_object(Bucket=grant_a.bucket, Key="media/1.png")["Body"].read() == b"a"
    listed = s3.list_objects_v2(Bucket=grant_a.bucket)["Contents"]
    assert [item["Key"] for item in listed] == ["media/1.png"]
    s3.put_object_acl(Bucket=grant_a.bucket, Key="media/1.png", ACL="private")
    s3.delete_object(Bucket=grant_a.bucket, Key="media/1.png")

    moto.admin("s3").put_object(Bucket=grant_b.bucket, Key="b.png", Body=b"b")
    refused = [
        lambda: s3.put_object(Bucket=grant_b.bucket, Key="x.png", Body=b"x"),
        lambda: s3.get_object(Bucket=grant_b.bucket, Key="b.png"),
        lambda: s3.delete_object(Bucket=grant_b.bucket, Key="b.png"),
        lambda: s3.list_objects_v2(Bucket=grant_b.bucket),
        # Not even its own backups: those are Herd's to write.
        lambda: s3.list_objects_v2(Bucket=grant_a.backups_bucket),
        lambda: s3.put_object(Bucket=grant_a.backups_bucket, Key="dump", Body=b"x"),
        lambda: s3.list_buckets(),
        lambda: s3.create_bucket(
            Bucket="test-new", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"}
        ),
    ]
    for call in refused:
        with pytest.raises(ClientError) as caught:
            call()
        assert _code(caught) == "AccessDenied"
    iam = moto.client("iam", grant_a.access_key_id, grant_a.secret_access_key or "")
    with pytest.raises(ClientError) as caught:
        iam.list_users()
    assert _code(caught) == "AccessDenied"
    assert moto.admin("s3").get_object(Bucket=grant_b.bucket, Key="b.png")["Body"].read() == b"b"


def test_ensuring_twice_creates_nothing_new(moto: Moto) -> None:
    settings = moto.settings()
    server = uuid7()
    first = ensure_server_storage(server, None, settings=settings)
    buckets, users = _buckets(moto), _herd_users(moto)

    again = ensure_server_storage(server, first.access_key_id, settings=settings)

    assert again.access_key_id == first.access_key_id
    assert again.secret_access_key is None  # the caller already has it
    assert _buckets(moto) == buckets  # same names, same creation dates
    assert _herd_users(moto) == users
    assert _keys(moto, storage_names(server, settings).user_name) == [first.access_key_id]
    # The first key still works.
    _as_server(moto, first).put_object(Bucket=first.bucket, Key="k", Body=b"1")


def test_a_key_whose_secret_was_lost_is_replaced_by_exactly_one(moto: Moto) -> None:
    """The worker created a key and died before the caller stored it: the next
    run knows no key, and must leave one working key, not two."""
    settings = moto.settings()
    server = uuid7()
    lost = ensure_server_storage(server, None, settings=settings)

    fresh = ensure_server_storage(server, None, settings=settings)

    user = storage_names(server, settings).user_name
    assert fresh.access_key_id != lost.access_key_id
    assert fresh.secret_access_key
    assert _keys(moto, user) == [fresh.access_key_id]
    with pytest.raises(ClientError) as caught:
        _as_server(moto, lost).get_object(Bucket=lost.bucket, Key="k")
    assert _code(caught) == "InvalidAccessKeyId"
    _as_server(moto, fresh).put_object(Bucket=fresh.bucket, Key="k", Body=b"1")

    # Crashed after creating a second key, while the stored one still works:
    # the stored one stays, the stray one goes.
    stray = moto.admin("iam").create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]
    kept = ensure_server_storage(server, fresh.access_key_id, settings=settings)
    assert (kept.access_key_id, kept.secret_access_key) == (fresh.access_key_id, None)
    assert stray not in _keys(moto, user)
    assert _keys(moto, user) == [fresh.access_key_id]


def test_a_stored_key_the_store_no_longer_has_is_replaced(moto: Moto) -> None:
    settings = moto.settings()
    server = uuid7()
    grant = ensure_server_storage(server, "AKIAGONEGONEGONEGONE", settings=settings)
    assert grant.secret_access_key
    assert _keys(moto, storage_names(server, settings).user_name) == [grant.access_key_id]


def test_an_inactive_stored_key_is_made_active_again(moto: Moto) -> None:
    settings = moto.settings()
    server = uuid7()
    grant = ensure_server_storage(server, None, settings=settings)
    user = storage_names(server, settings).user_name
    moto.admin("iam").update_access_key(
        UserName=user, AccessKeyId=grant.access_key_id, Status="Inactive"
    )

    ensure_server_storage(server, grant.access_key_id, settings=settings)

    [key] = moto.admin("iam").list_access_keys(UserName=user)["AccessKeyMetadata"]
    assert (key["AccessKeyId"], key["Status"]) == (grant.access_key_id, "Active")


def test_revoking_refuses_the_key_and_keeps_the_data(moto: Moto) -> None:
    settings = moto.settings()
    server = uuid7()
    grant = ensure_server_storage(server, None, settings=settings)
    s3 = _as_server(moto, grant)
    s3.put_object(Bucket=grant.bucket, Key="kept.png", Body=b"x")

    revoke_server_credentials(server, settings=settings)
    revoke_server_credentials(server, settings=settings)  # missing is done

    with pytest.raises(ClientError) as caught:
        s3.get_object(Bucket=grant.bucket, Key="kept.png")
    assert _code(caught) == "InvalidAccessKeyId"
    assert _herd_users(moto) == []
    assert moto.admin("s3").get_object(Bucket=grant.bucket, Key="kept.png")["Body"].read() == b"x"
    # Provisioning again gives a new user and key.
    again = ensure_server_storage(server, grant.access_key_id, settings=settings)
    assert again.secret_access_key
    assert again.access_key_id != grant.access_key_id


def test_deleting_data_removes_both_buckets_and_nothing_else(moto: Moto) -> None:
    settings = moto.settings()
    server, other = uuid7(), uuid7()
    grant = ensure_server_storage(server, None, settings=settings)
    kept = ensure_server_storage(other, None, settings=settings)
    admin = moto.admin("s3")
    for number in range(5):
        admin.put_object(Bucket=grant.bucket, Key=f"media/{number}", Body=b"m")
    admin.put_object(Bucket=grant.backups_bucket, Key="db/2026-01-01.dump", Body=b"d")
    admin.create_multipart_upload(Bucket=grant.bucket, Key="half-uploaded.mp4")
    admin.put_object(Bucket=kept.bucket, Key="media/0", Body=b"k")

    revoke_server_credentials(server, settings=settings)
    delete_server_data(server, settings=settings)
    delete_server_data(server, settings=settings)  # missing is done

    assert sorted(_buckets(moto)) == sorted([kept.bucket, kept.backups_bucket])
    assert admin.get_object(Bucket=kept.bucket, Key="media/0")["Body"].read() == b"k"


def test_deleting_a_versioned_bucket_removes_every_version(moto: Moto) -> None:
    settings = moto.settings()
    server = uuid7()
    grant = ensure_server_storage(server, None, settings=settings)
    admin = moto.admin("s3")
    admin.put_bucket_versioning(Bucket=grant.bucket, VersioningConfiguration={"Status": "Enabled"})
    admin.put_object(Bucket=grant.bucket, Key="a", Body=b"1")
    admin.put_object(Bucket=grant.bucket, Key="a", Body=b"2")
    admin.delete_object(Bucket=grant.bucket, Key="a")  # a delete marker

    delete_server_data(server, settings=settings)

    assert grant.bucket not in _buckets(moto)


def test_backups_expire_after_the_retention_period(moto: Moto) -> None:
    settings = moto.settings()
    server = uuid7()
    grant = ensure_server_storage(server, None, backup_retention_days=14, settings=settings)
    admin = moto.admin("s3")

    [rule] = admin.get_bucket_lifecycle_configuration(Bucket=grant.backups_bucket)["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["Expiration"] == {"Days": 14}
    assert rule["Filter"] == {"Prefix": ""}  # every object

    # A changed retention converges; the default comes from the settings.
    ensure_server_storage(
        server, grant.access_key_id, settings=moto.settings(backup_retention_days=7)
    )
    [rule] = admin.get_bucket_lifecycle_configuration(Bucket=grant.backups_bucket)["Rules"]
    assert rule["Expiration"] == {"Days": 7}
    # Media is kept until Mastodon deletes it.
    with pytest.raises(ClientError) as caught:
        admin.get_bucket_lifecycle_configuration(Bucket=grant.bucket)
    assert _code(caught) == "NoSuchLifecycleConfiguration"


def test_media_is_public_through_acls_by_default(moto: Moto) -> None:
    grant = ensure_server_storage(uuid7(), None, settings=moto.settings())
    admin = moto.admin("s3")
    assert grant.permission == "public-read"
    ownership = admin.get_bucket_ownership_controls(Bucket=grant.bucket)
    assert ownership["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerPreferred"}]
    block = admin.get_public_access_block(Bucket=grant.bucket)["PublicAccessBlockConfiguration"]
    assert (block["BlockPublicAcls"], block["IgnorePublicAcls"]) == (False, False)
    backups = admin.get_public_access_block(Bucket=grant.backups_bucket)
    assert all(backups["PublicAccessBlockConfiguration"].values())


def test_media_can_be_public_through_a_bucket_policy_instead(moto: Moto) -> None:
    settings = moto.settings(public_read="policy")
    grant = ensure_server_storage(uuid7(), None, settings=settings)
    assert grant.permission == ""
    policy = moto.admin("s3").get_bucket_policy(Bucket=grant.bucket)["Policy"]
    assert f"arn:aws:s3:::{grant.bucket}/*" in policy
    assert '"Principal":"*"' in policy

    # Switching back removes the policy, so media is not public twice over.
    ensure_server_storage(grant.server_id, grant.access_key_id, settings=moto.settings())
    with pytest.raises(ClientError) as caught:
        moto.admin("s3").get_bucket_policy(Bucket=grant.bucket)
    assert _code(caught) == "NoSuchBucketPolicy"


def test_us_east_1_buckets_are_created_without_a_location(moto: Moto) -> None:
    grant = ensure_server_storage(uuid7(), None, settings=moto.settings(region="us-east-1"))
    assert grant.bucket in _buckets(moto)


def test_an_unreachable_store_is_storage_unavailable() -> None:
    settings = StorageSettings(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        access_key_id="AKIAIOSFODNN7EXAMPLE",
        secret_access_key="not-used",
        connect_timeout_seconds=0.5,
        max_attempts=1,
    )
    with pytest.raises(StorageUnavailable) as caught:
        ensure_server_storage(uuid.uuid4(), None, settings=settings)
    assert not isinstance(caught.value, BotoCoreError | ClientError)
    assert "127.0.0.1" in caught.value.detail
    with pytest.raises(StorageUnavailable):
        revoke_server_credentials(uuid.uuid4(), settings=settings)
    with pytest.raises(StorageUnavailable):
        delete_server_data(uuid.uuid4(), settings=settings)


def test_refused_admin_credentials_are_a_storage_error_not_unavailable(moto: Moto) -> None:
    settings = moto.settings(secret_access_key="wrong-secret")
    with pytest.raises(StorageError) as caught:
        ensure_server_storage(uuid7(), None, settings=settings)
    assert not isinstance(caught.value, StorageUnavailable)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_the_secret_stays_out_of_reprs(moto: Moto) -> None:
    grant = ensure_server_storage(uuid7(), None, settings=moto.settings())
    assert grant.secret_access_key
    assert grant.secret_access_key not in repr(grant)
    assert moto.admin_secret not in repr(moto.settings())


def test_a_bucket_herd_may_not_use_is_reported_not_overwritten(moto: Moto) -> None:
    """Another account's bucket and a bucket Herd's credentials may not touch
    look the same from outside (AccessDenied); both stop the run."""
    settings = moto.settings()
    server = uuid7()
    moto.admin("s3").create_bucket(
        Bucket=storage_names(server, settings).media_bucket,
        CreateBucketConfiguration={"LocationConstraint": "eu-central-1"},
    )
    iam = moto.admin("iam")
    iam.create_user(UserName="outsider")
    iam.put_user_policy(
        UserName="outsider",
        PolicyName="create-only",
        PolicyDocument='{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
        '"Action":"s3:CreateBucket","Resource":"*"}]}',
    )
    key = iam.create_access_key(UserName="outsider")["AccessKey"]
    outsider = moto.settings(
        access_key_id=key["AccessKeyId"], secret_access_key=key["SecretAccessKey"]
    )
    with pytest.raises(BucketNameTaken, match="may not use it"):
        ensure_server_storage(server, None, settings=outsider)
