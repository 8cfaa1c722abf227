"""The upgrade job's decisions, with the host faked (no SSH, fast, both
databases): when it rolls back, when it must not, what the server and the
job say afterwards, and that a worker killed mid-rollback neither upgrades
nor restores twice. tests/e2e/test_upgrade.py runs the real playbooks."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.jobs.models import FINISHED, Job, JobState, JobStep
from controlplane.servers import upgrades
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server, ServerEvent
from controlplane.sqltypes import utcnow
from provisioning import health, pipeline
from provisioning.ansible import PlaybookResult, TaskEvent
from provisioning.registry import pipelines, redactor_for
from provisioning.steps import runs
from tests.factories import host, organisation, plan


@dataclass
class FakeHost:
    """What upgrade.yml and rollback.yml do to a host, reduced to the release
    it runs and the release record, with failures on demand."""

    version: str = "4.5.1"
    previous: str | None = None
    unhealthy: set[str] = field(default_factory=set)
    playbooks: list[str] = field(default_factory=list)
    # "before_record": upgrade.yml fails at its backup; "after_record": at a
    # migration, once state.json says an upgrade is under way.
    upgrade_fails: str | None = None
    rollback_fails: bool = False
    die_in_rollback: int = 0

    def run_playbook(
        self,
        playbook: str,
        _inventory: Any,
        variables: dict[str, Any],
        _workdir: Path,
        _ident: str,
        record: Callable[[TaskEvent], None],
        *_args: Any,
        **_kwargs: Any,
    ) -> PlaybookResult:
        self.playbooks.append(playbook)
        if playbook == "upgrade.yml":
            return self._upgrade(variables["mastodon_version"].removeprefix("v"), record)
        if self.die_in_rollback:
            self.die_in_rollback -= 1
            raise KeyboardInterrupt  # the worker process dies (SIGKILL)
        if self.rollback_fails:
            return PlaybookResult(status="failed", rc=2)
        if self.previous is not None:
            self.version, self.previous = self.previous, None
        return PlaybookResult(status="successful", rc=0)

    def _upgrade(self, target: str, record: Callable[[TaskEvent], None]) -> PlaybookResult:
        if self.upgrade_fails == "before_record":
            return PlaybookResult(status="failed", rc=2)
        if self.version != target:
            record(state_written())
            self.previous, self.version = self.version, target
        if self.upgrade_fails == "after_record":
            return PlaybookResult(status="failed", rc=2)
        return PlaybookResult(status="successful", rc=0)

    def check(self, _url: str, expected: str | None, _domain: str | None = None) -> Any:
        if self.version in self.unhealthy:
            return health.HealthReport(False, None, "/health answered 503")
        if expected is not None and not health.same_version(self.version, expected):
            return health.HealthReport(False, self.version, f"runs {self.version}")
        return health.HealthReport(True, self.version, "healthy")


def state_written(host: str = "h1") -> TaskEvent:
    """The event by which upgrade.yml's first change to a host (its release
    record) shows in the job."""
    return TaskEvent(
        host=host,
        play="Upgrade a Mastodon server",
        task="Write the release record",
        action="ansible.builtin.copy",
        status="changed",
        changed=True,
        duration_ms=5,
        result={"changed": True, "dest": "/home/mastodon/herd/state.json"},
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost()
    monkeypatch.setattr(runs, "run_playbook", fake.run_playbook)
    monkeypatch.setattr(health, "check", fake.check)
    return fake


@pytest.fixture
def server_id(engine: Engine, herd_env: Path) -> uuid.UUID:
    with Session(engine) as session:
        row = Server(
            organisation_id=organisation(session).id,
            plan_id=plan(session).id,
            host_id=host(session, "h1").id,
            slot=0,
            domain="up.herd-test.social",
            title="Up",
            state=ServerState.active,
            version="4.5.1",
        )
        session.add(row)
        session.commit()
        return row.id


def _start(engine: Engine, server_id: uuid.UUID, version: str = "v4.6.0") -> uuid.UUID:
    with Session(engine) as session:
        job = upgrades.start_upgrade(session, "test", server_id, version)
        session.info.clear()  # no broker: the test runs the job itself
        session.commit()
        return job.id


def _drive(engine: Engine, job_id: uuid.UUID, owner: str = "worker-a") -> Job:
    """Run the job to its end, skipping the backoffs between attempts."""
    for _ in range(50):
        pipeline.run_job(
            engine, job_id, pipelines(), lease_seconds=30, redactor_for=redactor_for, owner=owner
        )
        with Session(engine) as session:
            job = session.get(Job, job_id)
            assert job is not None
            if job.state in FINISHED:
                return job
            session.execute(update(Job).where(col(Job.id) == job_id).values(not_before=utcnow()))
            session.commit()
    raise AssertionError("the job did not finish")


def _server(engine: Engine, server_id: uuid.UUID) -> Server:
    with Session(engine) as session:
        row = session.get(Server, server_id)
        assert row is not None
        return row


def _results(engine: Engine, job_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    with Session(engine) as session:
        steps = session.exec(select(JobStep).where(JobStep.job_id == job_id)).all()
        return {s.name: s.result for s in steps}


def test_a_healthy_upgrade_activates_the_server_on_the_new_release(
    engine: Engine, fake: FakeHost, server_id: uuid.UUID
) -> None:
    job = _drive(engine, _start(engine, server_id))
    assert (job.state, job.error) == (JobState.succeeded, None)
    server = _server(engine, server_id)
    assert (server.state, server.version) == (ServerState.active, "4.6.0")
    assert fake.playbooks == ["upgrade.yml"]
    results = _results(engine, job.id)
    assert "skipped" in results["run_rollback"]
    assert "skipped" in results["finish_rollback"]


def test_a_failed_health_gate_rolls_back_and_the_job_says_so(
    engine: Engine, fake: FakeHost, server_id: uuid.UUID
) -> None:
    fake.unhealthy = {"4.6.0"}
    job = _drive(engine, _start(engine, server_id))
    assert job.state == JobState.failed
    assert job.error == (
        "finish_rollback: rolled back to v4.5.1: the upgrade to v4.6.0 failed "
        "(health gate: /health answered 503)"
    )
    server = _server(engine, server_id)
    assert (server.state, server.version) == (ServerState.active, "4.5.1")
    assert server.state_reason is not None
    assert server.state_reason.startswith("rolled back to v4.5.1")
    assert fake.playbooks == ["upgrade.yml", "rollback.yml"]
    with Session(engine) as session:
        events = session.exec(
            select(ServerEvent)
            .where(ServerEvent.server_id == server_id)
            .order_by(col(ServerEvent.id))
        ).all()
    assert [(e.event, e.to_state) for e in events] == [
        ("upgrade", "upgrading"),
        ("rolled_back", "active"),
    ]


def test_an_upgrade_that_fails_after_noting_itself_on_the_host_is_rolled_back(
    engine: Engine, fake: FakeHost, server_id: uuid.UUID
) -> None:
    fake.upgrade_fails = "after_record"
    job = _drive(engine, _start(engine, server_id))
    assert job.error is not None
    assert job.error.startswith("finish_rollback: rolled back to v4.5.1: ")
    assert "upgrade.yml failed (rc 2)" in job.error
    # One retry of the failed playbook (playbook_step's rule), then back.
    assert fake.playbooks == ["upgrade.yml", "upgrade.yml", "rollback.yml"]
    assert fake.version == "4.5.1"
    assert _server(engine, server_id).state == ServerState.active


def test_an_upgrade_that_never_changed_the_release_is_not_rolled_back(
    engine: Engine, fake: FakeHost, server_id: uuid.UUID
) -> None:
    """rollback.yml would go to the *older* previous release in state.json
    and restore that upgrade's backup: it must not run."""
    fake.upgrade_fails = "before_record"
    job = _drive(engine, _start(engine, server_id))
    assert fake.playbooks == ["upgrade.yml", "upgrade.yml"]
    assert job.error is not None
    assert job.error.startswith("finish_rollback: nothing to roll back, still on v4.5.1: ")
    server = _server(engine, server_id)
    assert (server.state, server.version) == (ServerState.active, "4.5.1")


def test_a_failed_rollback_leaves_the_server_failed_with_both_reasons(
    engine: Engine, fake: FakeHost, server_id: uuid.UUID
) -> None:
    fake.unhealthy = {"4.6.0"}
    fake.rollback_fails = True
    job = _drive(engine, _start(engine, server_id))
    assert job.state == JobState.failed
    assert job.error is not None
    assert job.error.startswith("run_rollback: rollback.yml failed (rc 2)")
    server = _server(engine, server_id)
    assert server.state == ServerState.failed
    assert server.state_reason == (
        "rollback failed (run_rollback: rollback.yml failed (rc 2) on h1) after the upgrade "
        "failed (health gate: /health answered 503)"
    )


def test_a_worker_killed_mid_rollback_is_resumed_without_upgrading_again(
    engine: Engine, fake: FakeHost, server_id: uuid.UUID
) -> None:
    fake.unhealthy = {"4.6.0"}
    fake.die_in_rollback = 1
    job_id = _start(engine, server_id)
    with pytest.raises(KeyboardInterrupt):
        _drive(engine, job_id)
    assert _results(engine, job_id)["run_upgrade"]["playbook"] == "upgrade.yml"
    # The dead worker's lease runs out; the reconciler hands the job on.
    with Session(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(lease_expires_at=utcnow()))
        session.commit()
    job = _drive(engine, job_id, owner="worker-b")
    assert job.error is not None
    assert job.error.startswith("finish_rollback: rolled back to v4.5.1")
    # rollback.yml ran again (it does nothing twice); upgrade.yml did not.
    assert fake.playbooks == ["upgrade.yml", "rollback.yml", "rollback.yml"]
    assert _server(engine, server_id).version == "4.5.1"


def test_a_cancelled_upgrade_that_had_not_reached_the_host_leaves_the_server_active(
    engine: Engine, fake: FakeHost, server_id: uuid.UUID
) -> None:
    job_id = _start(engine, server_id)
    with Session(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(cancel_requested=True))
        session.commit()
    assert _drive(engine, job_id).state == JobState.cancelled
    assert fake.playbooks == []
    server = _server(engine, server_id)
    assert (server.state, server.version) == (ServerState.active, "4.5.1")


def test_a_server_unhealthy_on_its_old_release_after_a_failed_upgrade_is_failed(
    engine: Engine, fake: FakeHost, server_id: uuid.UUID
) -> None:
    fake.upgrade_fails = "before_record"
    fake.unhealthy = {"4.5.1"}
    job = _drive(engine, _start(engine, server_id))
    assert job.error is not None
    assert job.error.startswith("rollback_health_gate: health gate: /health answered 503")
    assert fake.playbooks == ["upgrade.yml", "upgrade.yml"]
    server = _server(engine, server_id)
    assert server.state == ServerState.failed
    assert server.state_reason is not None
    assert server.state_reason.startswith("not healthy on v4.5.1 (rollback_health_gate: ")
