"""Hosts created on EC2: the real boto3 against moto in server mode."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.fleet import ec2
from controlplane.fleet.models import Host
from provisioning import pipeline
from provisioning.registry import pipelines
from tests.factories import World


@pytest.fixture
def moto_ec2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    moto = Path(sys.executable).with_name("moto_server")
    process = subprocess.Popen(
        [str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        for key, value in {
            "HERD_EC2_ENDPOINT_URL": url,
            "HERD_EC2_REGION": "eu-central-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            monkeypatch.setenv(key, value)
        ec2._client.cache_clear()
        yield url
    finally:
        ec2._client.cache_clear()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)


def _image(url: str) -> str:
    client = boto3.client("ec2", region_name="eu-central-1", endpoint_url=url)
    return client.describe_images()["Images"][0]["ImageId"]


def _run_until_done(engine: Engine, job_id: uuid.UUID) -> pipeline.RunOutcome:
    from sqlalchemy import update
    from sqlmodel import col

    from controlplane.jobs.models import Job
    from controlplane.sqltypes import utcnow

    for _ in range(20):
        outcome = pipeline.run_job(engine, job_id, pipelines(), lease_seconds=30, owner="t")
        if outcome.retry_in is None:
            return outcome
        with Session(engine) as session:  # skip the backoff: time is not the subject here
            session.execute(update(Job).where(col(Job.id) == job_id).values(not_before=utcnow()))
            session.commit()
    raise AssertionError("job did not finish")


def test_a_staff_launch_creates_one_tagged_instance_and_an_active_host(
    client: TestClient, world: World, engine: Engine, moto_ec2: str
) -> None:
    response = client.post(
        "/api/v1/hosts/ec2",
        json={
            "name": "h-ec2",
            "image_id": _image(moto_ec2),
            "instance_type": "t3.large",
            "capacity": 8,
        },
        headers=world.headers("operator"),
    )
    assert response.status_code == 202
    host = response.json()
    assert (host["state"], host["provider"]) == ("pending", "ec2")
    jobs = client.get(
        "/api/v1/jobs", params={"state": "pending"}, headers=world.headers("operator")
    ).json()["items"]
    job_id = next(uuid.UUID(j["id"]) for j in jobs if j["kind"] == "create_host")

    # A worker dies right after EC2 accepted the launch: the next run of the
    # step must find that instance (same ClientToken), not start a second.
    with Session(engine) as session:
        record = session.get(Host, uuid.UUID(host["id"]))
        assert record is not None
        first = ec2.launch(record.id, record.name, ec2.LaunchSpec(**record.launch_spec))
    assert _run_until_done(engine, job_id).state.value == "succeeded"

    active = client.get(f"/api/v1/hosts/{host['id']}", headers=world.headers("operator")).json()
    assert active["state"] == "active"
    assert active["provider_ref"] == first.instance_id
    assert active["address"]
    instances = [
        i
        for r in boto3.client(
            "ec2", region_name="eu-central-1", endpoint_url=moto_ec2
        ).describe_instances()["Reservations"]
        for i in r["Instances"]
    ]
    assert len(instances) == 1
    tags = {t["Key"]: t["Value"] for t in instances[0]["Tags"]}
    assert tags == {"Name": "h-ec2", "herd:host-id": host["id"], "herd:managed": "true"}


def test_an_unreachable_ec2_endpoint_is_a_herd_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERD_EC2_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    ec2._client.cache_clear()
    try:
        with pytest.raises(ec2.Ec2Error):
            ec2.describe("i-0123456789abcdef0")
    finally:
        ec2._client.cache_clear()
