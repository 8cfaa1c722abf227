"""A worker SIGKILLed at every step of provisioning in turn: the server still
ends active, and nothing exists twice."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from controlplane.jobs.models import Job
from controlplane.servers import secrets as server_secrets
from controlplane.servers.models import Server
from controlplane.storage import grant_secrets
from controlplane.storage.models import ServerStorage
from provisioning.steps.provision import PROVISION
from tests.e2e.stack import Stack, Worker
from tests.e2e.test_order_to_active import all_events, assert_no_secret_in_clear
from tests.moto import REGION, Moto

pytestmark = [pytest.mark.hosts, pytest.mark.slow]


@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_a_worker_killed_at_each_step_leaves_one_of_everything(
    stack: Stack,
    engine: Engine,
    herd_env: Path,
    moto: Moto,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    prefix = f"e2e{random.randrange(10**6)}-"
    for name, value in {
        "HERD_S3_ENDPOINT_URL": moto.url,
        "HERD_S3_REGION": REGION,
        "HERD_S3_ACCESS_KEY_ID": moto.admin_key_id,
        "HERD_S3_SECRET_ACCESS_KEY": moto.admin_secret,
        "HERD_S3_BUCKET_PREFIX": prefix,
    }.items():
        monkeypatch.setenv(name, value)
    # Every step, each once: the worker dies after doing it, before
    # recording it. The test also kills one worker in the middle of the
    # provision playbook, with ansible-playbook running over SSH.
    crash_file = tmp_path / "crash-at"
    crash_file.write_text("\n".join(PROVISION.step_names))
    stack.register_hosts()
    server_id = stack.order("social.crash-herd.social")
    stack.approve(server_id)

    killed_mid_playbook = False
    worker: Worker | None = None
    deadline = time.monotonic() + 600
    while not _job_succeeded(stack, server_id):
        assert time.monotonic() < deadline, stack.tail()
        if worker is None or worker.dead:
            worker = stack.start_worker(crash_file)
        if not killed_mid_playbook and _playbook_running(stack, server_id):
            worker.kill()
            killed_mid_playbook = True
        time.sleep(0.5)
        assert stack.server(server_id)["state"] != "failed", stack.tail()
    assert stack.server(server_id)["state"] == "active"
    assert crash_file.read_text().split() == [], "a step was never reached"
    assert killed_mid_playbook
    assert len(stack.workers) >= len(PROVISION.step_names) + 1

    # One of everything.
    host = stack.fleet["h1"]
    with Session(engine) as session:
        server = session.get(Server, uuid.UUID(server_id))
        assert server is not None
        assert session.exec(select(func.count()).select_from(Server)).one() == 1
        assert session.exec(select(func.count()).select_from(Job)).one() == 1
        stored = server_secrets.load(session, server.id)
        grant = session.get(ServerStorage, server.id)
    assert stored is not None
    assert grant is not None
    user = f"mastodon{server.slot}"
    env_file = host.read_text(f"/home/{user}/live/.env.production")
    # Generated once: the host has the secrets Herd recorded.
    assert f"SECRET_KEY_BASE={stored['SECRET_KEY_BASE']}\n" in env_file
    assert f"AWS_ACCESS_KEY_ID={grant.access_key_id}\n" in env_file
    iam, s3 = moto.admin("iam"), moto.admin("s3")
    tenant_users = [
        u["UserName"] for u in iam.list_users()["Users"] if u["UserName"].startswith(prefix)
    ]
    assert len(tenant_users) == 1
    keys = iam.list_access_keys(UserName=tenant_users[0])["AccessKeyMetadata"]
    assert [k["AccessKeyId"] for k in keys] == [grant.access_key_id]
    buckets = sorted(
        b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith(prefix)
    )
    assert buckets == sorted([grant.media_bucket, grant.backups_bucket])
    passwd = host.read_text("/etc/passwd")
    assert sum(line.startswith(f"{user}:") for line in passwd.splitlines()) == 1
    units = sorted(p.name for p in host.path("/etc/systemd/system").glob(f"{user}-*.service"))
    assert len(units) == 4, units
    databases = host.standin.databases()
    assert list(databases) == [f"mastodon_{server.id.hex}"]
    assert len(host.standin.calls(contains="rails db:setup")) == 1

    (job,) = stack.jobs(server_id)
    events = all_events(stack, job["id"])
    with Session(engine) as session:
        (storage_secret,) = grant_secrets(session, server.id)
    assert_no_secret_in_clear(stack, engine, herd_env, [*stored.values(), storage_secret], events)


def _playbook_running(stack: Stack, server_id: str) -> bool:
    jobs = stack.jobs(server_id)
    if not jobs:
        return False
    detail = stack.ok("operator", "GET", f"/jobs/{jobs[0]['id']}")
    steps = {s["name"]: s for s in detail["steps"]}
    run = steps["run_provision"]
    if run["state"] != "running":
        return False
    page = stack.ok("operator", "GET", f"/jobs/{jobs[0]['id']}/events", params={"limit": 500})
    return sum(e["step"] == "run_provision" for e in page["items"]) >= 10


def _job_succeeded(stack: Stack, server_id: str) -> bool:
    jobs = stack.jobs(server_id)
    return bool(jobs) and jobs[0]["state"] == "succeeded"
