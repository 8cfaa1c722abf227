"""Staff suspend and resume a server through the same jobs billing uses: the
state moves at once, and a job runs suspend.yml (maintenance page up,
services stopped) or resume.yml on the server's host. The host is faked at
run_playbook; tests/playbooks covers what the playbooks do on a real one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.audit.models import AuditEntry
from controlplane.jobs.models import FINISHED, Job, JobState, JobStep
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from provisioning import pipeline
from provisioning.ansible import PlaybookResult
from provisioning.registry import pipelines, redactor_for
from provisioning.steps import runs
from tests.factories import World, build_world


@pytest.fixture
def playbooks(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    ran: list[tuple[str, dict[str, Any]]] = []

    def fake_run(playbook: str, _inv: Any, variables: dict[str, Any], *_a: Any, **_k: Any):
        ran.append((playbook, variables))
        return PlaybookResult(status="successful", rc=0)

    monkeypatch.setattr(runs, "run_playbook", fake_run)
    return ran


def _drive(engine: Engine, job_id: uuid.UUID) -> Job:
    for _ in range(30):
        pipeline.run_job(engine, job_id, pipelines(), 30, redactor_for, owner="worker-a")
        with Session(engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            if job.state in FINISHED:
                return job
            session.execute(update(Job).where(col(Job.id) == job_id).values(not_before=utcnow()))
            session.commit()
    raise AssertionError("the job did not finish")


def _placed_world(engine: Engine) -> World:
    """The world, with its active server placed (host and slot) and the
    job the world leaves running on it finished."""
    world = build_world(engine)
    with Session(engine) as session:
        server = session.get(Server, world.ids["server"])
        assert server is not None
        server.slot = 0
        session.add(server)
        session.execute(
            update(Job)
            .where(col(Job.server_id) == server.id)
            .values(state=JobState.succeeded, finished_at=utcnow())
        )
        session.commit()
    return world


def _jobs(engine: Engine, server_id: uuid.UUID) -> list[Job]:
    with Session(engine) as session:
        rows = session.exec(
            select(Job)
            .where(Job.server_id == server_id, col(Job.kind).in_(["suspend", "resume"]))
            .order_by(col(Job.id))
        )
        return list(rows.all())


def test_staff_suspend_and_resume_run_the_playbooks_through_jobs(
    client: TestClient, engine: Engine, playbooks: list
) -> None:
    world = _placed_world(engine)
    server_id = world.ids["server"]
    staff = world.headers("operator")
    suspended = client.post(
        f"/api/v1/servers/{server_id}/suspend", json={"reason": "abuse report 42"}, headers=staff
    )
    assert suspended.status_code == 200, suspended.text
    assert suspended.json()["state"] == "suspended"
    [job] = _jobs(engine, server_id)
    assert (job.kind, job.params) == ("suspend", {"reason": "abuse report 42"})
    with Session(engine) as session:
        steps = session.exec(
            select(JobStep.name).where(JobStep.job_id == job.id).order_by(col(JobStep.position))
        ).all()
        assert list(steps) == ["wait_turn", "run_suspend"]
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "server.suspend")).one()
        assert entry.details == {"reason": "abuse report 42", "job_id": str(job.id)}
        assert entry.organisation_id == world.ids["org"]
    assert _drive(engine, job.id).state == JobState.succeeded
    [(playbook, variables)] = playbooks
    assert playbook == "suspend.yml"
    assert variables["mastodon_local_domain"] == "live.org-a-herd.social"

    resumed = client.post(f"/api/v1/servers/{server_id}/resume", json={}, headers=staff)
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["state"] == "active"
    resume = _jobs(engine, server_id)[-1]
    assert resume.kind == "resume"
    assert _drive(engine, resume.id).state == JobState.succeeded
    assert [p for p, _ in playbooks] == ["suspend.yml", "resume.yml"]


def test_a_resume_waits_for_the_suspend_before_it(
    client: TestClient, engine: Engine, playbooks: list
) -> None:
    world = _placed_world(engine)
    server_id, staff = world.ids["server"], world.headers("staff_admin")
    for action, body in (("suspend", {"reason": "spam wave"}), ("resume", {})):
        response = client.post(f"/api/v1/servers/{server_id}/{action}", json=body, headers=staff)
        assert response.status_code == 200, response.text
    suspend, resume = _jobs(engine, server_id)
    # The resume's worker comes first: it waits until the suspend has run, so
    # the host does not end with the maintenance page up on an active server.
    pipeline.run_job(engine, resume.id, pipelines(), 30, redactor_for, owner="worker-b")
    assert playbooks == []
    assert _drive(engine, suspend.id).state == JobState.succeeded
    assert _drive(engine, resume.id).state == JobState.succeeded
    assert [p for p, _ in playbooks] == ["suspend.yml", "resume.yml"]


def test_a_server_never_placed_is_suspended_without_a_playbook(
    client: TestClient, engine: Engine, playbooks: list
) -> None:
    world = build_world(engine)
    staff = world.headers("operator")
    server_id = world.ids["suspended_server"]
    assert (
        client.post(f"/api/v1/servers/{server_id}/resume", json={}, headers=staff).status_code
        == 200
    )
    [job] = _jobs(engine, server_id)
    assert _drive(engine, job.id).state == JobState.succeeded
    assert playbooks == []
