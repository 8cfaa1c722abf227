"""moto in server mode, with IAM enforced: S3 and IAM as AWS checks them.

One moto process serves the session; each test resets its state, lets
exactly ADMIN_SETUP_CALLS requests through unauthenticated (moto's
INITIAL_NO_AUTH_ACTION_COUNT, re-armed through /moto-api/reset-auth), makes
Herd's admin user with them, and from then on moto checks every request's
signature and the caller's IAM policies, as AWS does.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from controlplane.storage.settings import StorageSettings

REGION = "eu-central-1"
# CreateUser, PutUserPolicy, CreateAccessKey: the admin user's set-up.
ADMIN_SETUP_CALLS = 3
ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Moto:
    url: str
    admin_key_id: str
    admin_secret: str

    def settings(self, **overrides: Any) -> StorageSettings:
        values: dict[str, Any] = {
            "endpoint_url": self.url,
            "region": REGION,
            "access_key_id": self.admin_key_id,
            "secret_access_key": self.admin_secret,
            "bucket_prefix": "test-",
            "max_attempts": 1,
        }
        values.update(overrides)
        return StorageSettings(**values)

    def client(self, service: str, key_id: str, secret: str) -> Any:
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.url,
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
        )

    def admin(self, service: str) -> Any:
        return self.client(service, self.admin_key_id, self.admin_secret)


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    port = free_port()
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        env={**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(ADMIN_SETUP_CALLS)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{url}/moto-api/data.json", timeout=0.5)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start on {url}", pytrace=False)
                time.sleep(0.05)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


@pytest.fixture
def moto(moto_url: str) -> Moto:
    httpx.post(f"{moto_url}/moto-api/reset").raise_for_status()
    httpx.post(
        f"{moto_url}/moto-api/reset-auth", content=str(ADMIN_SETUP_CALLS).encode()
    ).raise_for_status()
    # Any key is accepted until the set-up calls are spent.
    iam = Moto(moto_url, "unchecked", "unchecked").admin("iam")
    iam.create_user(UserName="herd-admin")
    iam.put_user_policy(UserName="herd-admin", PolicyName="all", PolicyDocument=ADMIN_POLICY)
    key = iam.create_access_key(UserName="herd-admin")["AccessKey"]
    server = Moto(moto_url, key["AccessKeyId"], key["SecretAccessKey"])
    # The set-up must have spent exactly the free calls: from here on a key
    # moto never issued is refused.
    with pytest.raises(ClientError, match=r"InvalidAccessKeyId|InvalidClientTokenId"):
        server.client("s3", "AKIAIOSFODNN7EXAMPLE", "nope").list_buckets()
    return server
