"""Faults during provisioning, on the whole stack: a test host's SSH cut off
in the middle of the provision playbook. Herd retries with backoff, the
operator sees the host was unreachable, and once SSH is back the server ends
active with nothing done twice.

(A worker SIGKILLed at every step is tests/e2e/test_worker_killed.py.)
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from controlplane.jobs.models import Job
from controlplane.servers.models import Server
from tests.e2e.stack import Stack
from tests.e2e.test_order_to_active import all_events

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_kind", ["postgresql"]),
]


def _provision_events(stack: Stack, job_id: str) -> list[dict]:
    return [e for e in all_events(stack, job_id) if e["step"] == "run_provision"]


def test_ssh_cut_off_mid_playbook_is_retried_and_nothing_is_done_twice(
    db_kind: str, stack: Stack, engine: Engine
) -> None:
    host = stack.fleet["h1"]
    stack.register_hosts()
    stack.start_worker().wait_ready()
    server_id = stack.order("social.faults-herd.social")
    stack.approve(server_id)

    def playbook_under_way() -> str | None:
        jobs = stack.jobs(server_id)
        if jobs and len(_provision_events(stack, jobs[0]["id"])) >= 10:
            return jobs[0]["id"]
        return None

    job_id = stack.wait_until(playbook_under_way, 600)
    host.cut_ssh("refuse")

    def unreachable_seen() -> bool:
        return any(e["status"] == "unreachable" for e in _provision_events(stack, job_id))

    stack.wait_until(unreachable_seen, 300)
    # What the operator reads while it waits: the step failed once and is
    # waiting to be tried again; the server is still provisioning.
    detail = stack.ok("operator", "GET", f"/jobs/{job_id}")
    step = next(s for s in detail["steps"] if s["name"] == "run_provision")
    assert step["state"] != "done", step
    assert step["attempts"] >= 1
    assert stack.server(server_id)["state"] == "provisioning"
    host.restore_ssh()

    server = stack.wait_for_state(server_id, "active", timeout=900)
    assert server["version"] == "4.5.1"
    detail = stack.ok("operator", "GET", f"/jobs/{job_id}")
    step = next(s for s in detail["steps"] if s["name"] == "run_provision")
    assert step["attempts"] >= 2, step
    assert detail["state"] == "succeeded"

    # Nothing twice: one job, one Unix user, one set of units, one database,
    # and Mastodon's database set up once although the play ran again.
    with Session(engine) as session:
        row = session.get(Server, uuid.UUID(server_id))
        assert row is not None
        assert session.exec(select(func.count()).select_from(Job)).one() == 1
    user = f"mastodon{row.slot}"
    passwd = host.read_text("/etc/passwd")
    assert sum(line.startswith(f"{user}:") for line in passwd.splitlines()) == 1
    units = sorted(p.name for p in host.path("/etc/systemd/system").glob(f"{user}-*.service"))
    assert len(units) == 4, units
    assert list(host.standin.databases()) == [f"mastodon_{row.id.hex}"]
    assert len(host.standin.calls(contains="rails db:setup")) == 1
