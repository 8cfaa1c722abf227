"""Users, policies and access keys through boto3's IAM client: AWS IAM, and
stores that speak its API (Ceph RGW accounts, moto)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from controlplane.storage.backend import AccessKey, NewAccessKey
from controlplane.storage.clients import iam_client
from controlplane.storage.errors import StorageError, error_code, translated
from controlplane.storage.settings import StorageSettings

MISSING = "NoSuchEntity"


class IamIdentities:
    def __init__(self, settings: StorageSettings) -> None:
        self._settings = settings

    @property
    def _client(self) -> Any:
        return iam_client(self._settings)

    def ensure_user(self, name: str, path: str) -> bool:
        with translated(f"looking for user {name}"):
            try:
                self._client.get_user(UserName=name)
                return False
            except ClientError as exc:
                if error_code(exc) != MISSING:
                    raise
        try:
            with translated(f"creating user {name}"):
                self._client.create_user(UserName=name, Path=path)
        except StorageError as exc:
            if exc.code == "EntityAlreadyExists":
                return False  # another worker won the race
            raise
        return True

    def put_user_policy(self, user: str, policy_name: str, document: str) -> None:
        with translated(f"setting policy {policy_name} of user {user}"):
            self._client.put_user_policy(
                UserName=user, PolicyName=policy_name, PolicyDocument=document
            )

    def access_keys(self, user: str) -> list[AccessKey]:
        keys: list[AccessKey] = []
        with translated(f"listing the access keys of user {user}"):
            try:
                for page in self._client.get_paginator("list_access_keys").paginate(UserName=user):
                    keys.extend(
                        AccessKey(item["AccessKeyId"], item["Status"] == "Active")
                        for item in page["AccessKeyMetadata"]
                    )
            except ClientError as exc:
                if error_code(exc) != MISSING:
                    raise
        return keys

    def create_access_key(self, user: str) -> NewAccessKey:
        with translated(f"creating an access key for user {user}"):
            created = self._client.create_access_key(UserName=user)["AccessKey"]
        return NewAccessKey(created["AccessKeyId"], created["SecretAccessKey"])

    def activate_access_key(self, user: str, key_id: str) -> None:
        with translated(f"activating access key {key_id} of user {user}"):
            self._client.update_access_key(UserName=user, AccessKeyId=key_id, Status="Active")

    def delete_access_key(self, user: str, key_id: str) -> None:
        with translated(f"deleting access key {key_id} of user {user}"):
            try:
                self._client.delete_access_key(UserName=user, AccessKeyId=key_id)
            except ClientError as exc:
                if error_code(exc) != MISSING:
                    raise

    def delete_user(self, user: str) -> None:
        # IAM refuses to delete a user that still has keys or policies.
        for key in self.access_keys(user):
            self.delete_access_key(user, key.key_id)
        with translated(f"deleting user {user}"):
            try:
                pages = self._client.get_paginator("list_user_policies").paginate(UserName=user)
                for policy_name in [name for page in pages for name in page["PolicyNames"]]:
                    self._client.delete_user_policy(UserName=user, PolicyName=policy_name)
                self._client.delete_user(UserName=user)
            except ClientError as exc:
                if error_code(exc) != MISSING:
                    raise
