"""Upgrade jobs started together share one Ansible run (provisioning/steps/
shared_run.py), with the hosts faked (no SSH, fast, both databases): the
leader's single run covers every server, each job still gets its own
events, outcome, health gate and rollback, a server that fails in the shared
run retries alone, and a leader killed mid-run is resumed without anyone
upgrading twice. tests/e2e/test_rollouts.py runs the real playbooks so."""

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

from controlplane.jobs.models import FINISHED, Job, JobEvent, JobState, JobStep
from controlplane.servers import upgrades
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from provisioning import health, pipeline
from provisioning.ansible import HostSummary, Inventory, PlaybookResult, TaskEvent
from provisioning.registry import pipelines, redactor_for
from provisioning.steps import runs, shared_run
from tests.factories import host, organisation, plan
from tests.functional.test_upgrade_pipeline import state_written

SERVERS = 3


@dataclass
class FakeFleet:
    """upgrade.yml and rollback.yml on several hosts, reduced to the release
    each runs, with failures on demand. A run sees the inventory it was
    given; the call log says which hosts each run covered."""

    versions: dict[str, str] = field(default_factory=dict)  # host name → release
    previous: dict[str, str] = field(default_factory=dict)
    failing: set[str] = field(default_factory=set)  # hosts whose upgrade.yml fails
    die_in_run: int = 0  # shared runs during which the worker dies
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    extravars: list[dict[str, Any]] = field(default_factory=list)

    def run_playbook(
        self,
        playbook: str,
        inventory: Inventory,
        variables: dict[str, Any],
        _workdir: Path,
        _ident: str,
        record: Callable[[TaskEvent], None],
        *_args: Any,
        **_kwargs: Any,
    ) -> PlaybookResult:
        names = tuple(sorted(inventory.hosts))
        self.calls.append((playbook, names))
        self.extravars.append(variables)
        stats: dict[str, HostSummary] = {}
        for name in names:
            # A shared run names servers <host>-slot<n> and gives each its
            # variables as host variables; a run of its own, as extra ones.
            host_name = name.split("-slot")[0]
            version = {**variables, **inventory.hosts[name]}.get("mastodon_version", "")
            stats[name] = self._one(playbook, name, host_name, str(version), record)
        if self.die_in_run and len(names) > 1:
            self.die_in_run -= 1
            raise KeyboardInterrupt  # the worker process dies (SIGKILL)
        failed = any(s.failed for s in stats.values())
        return PlaybookResult(
            status="failed" if failed else "successful", rc=2 if failed else 0, hosts=stats
        )

    def _one(
        self,
        playbook: str,
        name: str,
        host_name: str,
        version: str,
        record: Callable[[TaskEvent], None],
    ) -> HostSummary:
        if playbook == "rollback.yml":
            if host_name in self.previous:
                self.versions[host_name] = self.previous.pop(host_name)
            return HostSummary(ok=3)
        target = version.removeprefix("v")
        if self.versions[host_name] != target:
            record(state_written(name))
            self.previous[host_name], self.versions[host_name] = self.versions[host_name], target
        if host_name in self.failing:
            return HostSummary(ok=2, failed=1)
        return HostSummary(ok=11, changed=5)

    def check(self, url: str, expected: str | None, _domain: str | None = None) -> Any:
        host_name = url.removeprefix("https://").split(".")[0]
        version = self.versions[host_name]
        if expected is not None and not health.same_version(version, expected):
            return health.HealthReport(False, version, f"runs {version}")
        return health.HealthReport(True, version, "healthy")


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> FakeFleet:
    fleet = FakeFleet()
    monkeypatch.setattr(runs, "run_playbook", fleet.run_playbook)
    monkeypatch.setattr(shared_run, "run_playbook", fleet.run_playbook)
    monkeypatch.setattr(health, "check", fleet.check)
    return fleet


@pytest.fixture
def server_ids(engine: Engine, herd_env: Path, fleet: FakeFleet) -> list[uuid.UUID]:
    ids = []
    with Session(engine) as session:
        org, tier = organisation(session), plan(session)
        for n in range(SERVERS):
            name = f"h{n}"
            row = Server(
                organisation_id=org.id,
                plan_id=tier.id,
                host_id=host(session, name).id,
                slot=0,
                domain=f"{name}.herd-test.social",
                title=name,
                state=ServerState.active,
                version="4.5.1",
            )
            session.add(row)
            fleet.versions[name] = "4.5.1"
            ids.append(row.id)
        session.commit()
    return ids


def _start_together(engine: Engine, server_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """What a rollout tick does for the servers it starts."""
    with Session(engine) as session:
        jobs = [upgrades.start_upgrade(session, "test", s, "v4.6.0") for s in server_ids]
        upgrades.run_together(session, jobs)
        session.info.clear()  # no broker: the test runs the jobs itself
        session.commit()
        return [job.id for job in jobs]


def _run_once(engine: Engine, job_id: uuid.UUID, owner: str = "worker-a") -> pipeline.RunOutcome:
    outcome = pipeline.run_job(
        engine, job_id, pipelines(), lease_seconds=30, redactor_for=redactor_for, owner=owner
    )
    _set(engine, job_id, not_before=utcnow())  # skip the backoff or the wait
    return outcome


def _set(engine: Engine, job_id: uuid.UUID, **values: Any) -> None:
    with Session(engine) as session:
        session.execute(update(Job).where(col(Job.id) == job_id).values(**values))
        session.commit()


def _drive_all(engine: Engine, job_ids: list[uuid.UUID], owner: str = "worker-a") -> list[Job]:
    """Round-robin over the jobs, as workers would, until all have ended."""
    for _ in range(100):
        with Session(engine) as session:
            jobs = [session.get(Job, j) for j in job_ids]
        if all(j is not None and j.state in FINISHED for j in jobs):
            return jobs  # type: ignore[return-value]
        for job in jobs:
            assert job is not None
            if job.state not in FINISHED:
                _run_once(engine, job.id, owner)
    raise AssertionError("the jobs did not finish")


def _step(engine: Engine, job_id: uuid.UUID, name: str) -> JobStep:
    with Session(engine) as session:
        return session.exec(
            select(JobStep).where(JobStep.job_id == job_id, JobStep.name == name)
        ).one()


def _event_hosts(engine: Engine, job_id: uuid.UUID) -> set[str | None]:
    with Session(engine) as session:
        return {e.host for e in session.exec(select(JobEvent).where(JobEvent.job_id == job_id))}


def test_one_run_upgrades_every_server_and_each_job_keeps_its_own_record(
    engine: Engine, fleet: FakeFleet, server_ids: list[uuid.UUID]
) -> None:
    job_ids = _start_together(engine, server_ids)
    # A follower that reaches its turn first waits for the leader, without
    # using up an attempt and without holding a worker.
    waited = _run_once(engine, job_ids[1])
    assert waited.state == JobState.pending
    assert waited.detail == f"waiting for the shared upgrade.yml run of job {job_ids[0]}"
    assert _step(engine, job_ids[1], "run_upgrade").attempts == 0
    assert fleet.calls == []

    jobs = _drive_all(engine, job_ids)

    assert [(j.state, j.error) for j in jobs] == [(JobState.succeeded, None)] * SERVERS
    assert fleet.calls == [("upgrade.yml", ("h0-slot0", "h1-slot0", "h2-slot0"))]
    assert fleet.extravars[0] == {
        "mastodon_upgrade_serial": SERVERS,
        "mastodon_upgrade_max_fail_percentage": 100,
    }
    for n, job_id in enumerate(job_ids):
        result = _step(engine, job_id, "run_upgrade").result
        assert result["hosts"] == {f"h{n}": vars(HostSummary(ok=11, changed=5))}
        assert result["shared_by"] == SERVERS
        # Each job has the events of its own server, under its host's name.
        assert _event_hosts(engine, job_id) == {f"h{n}"}
    with Session(engine) as session:
        servers = [session.get(Server, s) for s in server_ids]
    assert [(s.state, s.version) for s in servers if s] == [(ServerState.active, "4.6.0")] * 3


def test_a_server_that_fails_in_the_shared_run_retries_alone_and_is_rolled_back(
    engine: Engine, fleet: FakeFleet, server_ids: list[uuid.UUID]
) -> None:
    fleet.failing = {"h1"}
    job_ids = _start_together(engine, server_ids)
    jobs = _drive_all(engine, job_ids)

    assert [j.state for j in jobs] == [JobState.succeeded, JobState.failed, JobState.succeeded]
    assert jobs[1].error is not None
    assert jobs[1].error.startswith("finish_rollback: rolled back to v4.5.1: the upgrade to ")
    assert "upgrade.yml failed (rc 2) on h1" in jobs[1].error
    # The others did not stop part-way for h1, and were not run again; h1's
    # second attempt (playbook_step's rule: one retry) ran on its own.
    assert fleet.calls == [
        ("upgrade.yml", ("h0-slot0", "h1-slot0", "h2-slot0")),
        ("upgrade.yml", ("h1",)),
        ("rollback.yml", ("h1",)),
    ]
    assert fleet.versions == {"h0": "4.6.0", "h1": "4.5.1", "h2": "4.6.0"}


def test_a_leader_killed_mid_run_is_resumed_and_no_server_is_upgraded_twice(
    engine: Engine, fleet: FakeFleet, server_ids: list[uuid.UUID]
) -> None:
    fleet.die_in_run = 1
    job_ids = _start_together(engine, server_ids)
    with pytest.raises(KeyboardInterrupt):
        _run_once(engine, job_ids[0])
    # Until the dead worker's lease runs out, the others wait.
    assert _run_once(engine, job_ids[2]).state == JobState.pending
    _set(engine, job_ids[0], lease_expires_at=utcnow())

    jobs = _drive_all(engine, job_ids, owner="worker-b")

    assert [j.state for j in jobs] == [JobState.succeeded] * SERVERS
    everyone = ("h0-slot0", "h1-slot0", "h2-slot0")
    assert fleet.calls == [("upgrade.yml", everyone), ("upgrade.yml", everyone)]
    # The second run found every host upgraded and changed nothing: the
    # release record was written once per host.
    for n, job_id in enumerate(job_ids):
        with Session(engine) as session:
            written = session.exec(
                select(JobEvent).where(JobEvent.job_id == job_id, JobEvent.status == "changed")
            ).all()
        assert [e.host for e in written] == [f"h{n}"]
    assert set(fleet.versions.values()) == {"4.6.0"}


def test_a_job_cancelled_before_the_run_is_left_out_of_it(
    engine: Engine, fleet: FakeFleet, server_ids: list[uuid.UUID]
) -> None:
    job_ids = _start_together(engine, server_ids)
    _set(engine, job_ids[2], cancel_requested=True)
    jobs = _drive_all(engine, job_ids)
    assert [j.state for j in jobs] == [JobState.succeeded, JobState.succeeded, JobState.cancelled]
    assert fleet.calls == [("upgrade.yml", ("h0-slot0", "h1-slot0"))]
    assert fleet.versions["h2"] == "4.5.1"
    with Session(engine) as session:
        left = session.get(Server, server_ids[2])
    assert left is not None
    assert left.state == ServerState.active


def test_followers_of_a_leader_that_ended_without_the_run_go_on_alone(
    engine: Engine, fleet: FakeFleet, server_ids: list[uuid.UUID]
) -> None:
    job_ids = _start_together(engine, server_ids)
    _set(engine, job_ids[0], cancel_requested=True)
    assert _run_once(engine, job_ids[0]).state == JobState.cancelled
    jobs = _drive_all(engine, job_ids[1:])
    assert [j.state for j in jobs] == [JobState.succeeded, JobState.succeeded]
    assert sorted(fleet.calls) == [("upgrade.yml", ("h1",)), ("upgrade.yml", ("h2",))]
