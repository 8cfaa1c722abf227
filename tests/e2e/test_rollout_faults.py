"""Faults during a rollout, on the whole stack: three servers on three test
hosts, upgraded one a wave with concurrency 1, and while each server's
upgrade playbook runs, one fault:

1. Herd's PostgreSQL is stopped `-m immediate` (every connection cut, as in a
   crash) and started again;
2. the broker (Redis) is SIGKILLed and started again empty;
3. the server's test host stops answering SSH, and comes back.

The rollout completes on its own, every server is upgraded by one job, on
the host the upgrade's migrations ran once each, and the operator saw each
fault: /healthz answered 503 while the database or the broker was down, and
the job showed the unreachable host and the retry.

The worker does not survive the broker's death: Celery's consumer fails to
reconnect (kombu's AttributeError on the connection it has dropped) and the
worker exits once its running task is done. The test starts it again as a
service manager would (systemd's Restart=always) and allows that once; a
worker that reconnected on its own would need no restart.

Herd's PostgreSQL and Redis are the test's own (tests/e2e/private_services.py),
as in test_database_restart.py and test_broker_restart.py; the SSH cut is
test_faults.py's. The same faults during provisioning are those tests.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane import migrate
from controlplane.jobs.models import Job
from tests.e2e import private_services
from tests.e2e.private_services import PrivatePostgres, PrivateRedis
from tests.e2e.stack import Stack
from tests.e2e.test_order_to_active import all_events
from tests.hosts import webcheck

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_kind", ["postgresql"]),
]
TARGET = "v4.5.2"
# Tasks of upgrade.yml done before a fault strikes: early in the play, so
# that the rest of it runs through the fault or after it.
UNDER_WAY_EVENTS = 3


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    with private_services.running_postgres() as cluster:
        yield cluster


@pytest.fixture
def postgres_url(private_postgres: PrivatePostgres) -> str:
    """Herd's database on the private cluster (overrides the suite's)."""
    migrate.upgrade(private_postgres.url)
    return private_postgres.url


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    with private_services.running_redis() as server:
        yield server


@pytest.fixture
def broker_url(private_redis: PrivateRedis) -> str:
    """The stack's broker is the private Redis (overrides tests/e2e/conftest.py)."""
    return private_redis.url


def _fleet(stack: Stack, start_fleet: Any) -> dict[str, Any]:
    """Three hosts (the stack's h1, h2 and h3), one server each, active."""
    more = start_fleet(["h2", "h3"])
    hosts = {h.name: h for h in [*stack.fleet, *more]}
    for host in hosts.values():
        registration = host.registration()
        registration.pop("slots")
        # One server a host, however the approvals race: each fault hits one server.
        registration["capacity"] = 1
        stack.ok("operator", "POST", "/hosts", json=registration)
    stack.start_worker(concurrency=3).wait_ready()
    ids = [stack.order(f"s{i}.rollfaults-herd.social") for i in range(3)]
    for server_id in ids:
        stack.approve(server_id)
    for server_id in ids:
        assert stack.wait_for_state(server_id, "active", timeout=600)["version"] == "4.5.1"
    names = {h["id"]: h["name"] for h in stack.ok("operator", "GET", "/hosts")["items"]}
    return {s: hosts[names[stack.ok("operator", "GET", f"/servers/{s}")["host_id"]]] for s in ids}


def _targets(stack: Stack, rollout_id: str) -> dict[str, dict[str, Any]]:
    page = stack.ok("operator", "GET", f"/rollouts/{rollout_id}/servers", params={"limit": 100})
    return {t["server_id"]: t for t in page["items"]}


def _upgrade_events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    return [e for e in all_events(stack, job_id) if e["step"] == "run_upgrade"]


def _supervise(stack: Stack, restarts: list[str]) -> None:
    """Start the worker again if it has exited, as its service manager does in
    production (systemd's Restart=always). Celery's consumer may not survive
    the broker's death while a task is unacknowledged: kombu fails restoring
    it ("Unrecoverable error: AttributeError ... 'hostname'") and the worker
    exits once its running task has finished."""
    if stack.workers[-1].dead:
        restarts.append(stack.workers[-1].log.read_text(errors="replace"))
        stack.start_worker().wait_ready()


def _under_way(
    stack: Stack, rollout_id: str, server_id: str, restarts: list[str]
) -> Callable[[], str | None]:
    """Until the server's upgrade job has run the first tasks of upgrade.yml."""

    def check() -> str | None:
        _supervise(stack, restarts)
        job_id = _targets(stack, rollout_id)[server_id]["job_id"]
        if job_id and len(_upgrade_events(stack, job_id)) >= UNDER_WAY_EVENTS:
            return str(job_id)
        return None

    return check


def _healthz(stack: Stack) -> int:
    return httpx.get(f"{stack.api}/healthz", timeout=60).status_code


def _upgrade_jobs(engine: Engine) -> Counter[str]:
    with Session(engine) as session:
        jobs = session.exec(select(Job).where(Job.kind == "upgrade")).all()
    return Counter(str(j.server_id) for j in jobs if j.params.get("version") == TARGET)


def test_a_rollout_rides_out_a_database_crash_a_broker_restart_and_an_ssh_cut(
    db_kind: str,
    stack: Stack,
    engine: Engine,
    private_postgres: PrivatePostgres,
    private_redis: PrivateRedis,
    start_fleet: Any,
) -> None:
    host_of = _fleet(stack, start_fleet)
    stack.ok("operator", "POST", "/releases", json={"tag": TARGET, "security": True})
    spec = {
        "target": TARGET,
        "selector": {"all": True},
        "waves": [1],  # the last size repeats: one server a wave
        "concurrency": 1,
        "failure_budget": 0,
    }
    plan = stack.ok("operator", "POST", "/rollouts/plan", json=spec)
    order = [s["server_id"] for s in sorted(plan["servers"], key=lambda s: s["wave"])]
    assert sorted(s["wave"] for s in plan["servers"]) == [0, 1, 2]
    for host in host_of.values():
        host.standin.clear_calls()
    rollout_id = stack.ok("operator", "POST", "/rollouts", json=spec)["id"]
    restarts: list[str] = []

    # 1. PostgreSQL crashes under wave 0's upgrade.
    stack.wait_until(_under_way(stack, rollout_id, order[0], restarts), 600)
    private_postgres.stop()
    assert _healthz(stack) == 503
    time.sleep(10)  # the worker records events and renews its lease meanwhile
    private_postgres.start()
    stack.wait_until(lambda: _healthz(stack) == 200, 60)

    # 2. The broker dies under wave 1's upgrade and comes back empty.
    stack.wait_until(_under_way(stack, rollout_id, order[1], restarts), 600)
    private_redis.stop()
    assert _healthz(stack) == 503
    time.sleep(5)
    private_redis.start()

    # 3. Wave 2's host stops answering SSH mid-playbook, and is back within
    # run_upgrade's first backoff (production's 20 s: this test, like the other
    # fault tests, keeps production's backoffs, which its outages are timed against).
    cut = host_of[order[2]]
    job_id = stack.wait_until(_under_way(stack, rollout_id, order[2], restarts), 600)
    cut.cut_ssh("refuse")
    stack.wait_until(
        lambda: any(e["status"] == "unreachable" for e in _upgrade_events(stack, job_id)), 300
    )
    # What the operator reads meanwhile: the step failed once and waits to be
    # tried again; the server is upgrading; the rollout runs and counts no failure.
    step = next(
        s
        for s in stack.ok("operator", "GET", f"/jobs/{job_id}")["steps"]
        if s["name"] == "run_upgrade"
    )
    assert step["state"] != "done", step
    assert step["attempts"] >= 1, step
    assert stack.server(order[2])["state"] == "upgrading"
    rollout = stack.ok("operator", "GET", f"/rollouts/{rollout_id}")
    assert (rollout["state"], rollout["failures"]) == ("running", 0), rollout
    cut.restore_ssh()

    def finished() -> dict[str, Any] | None:
        _supervise(stack, restarts)
        rollout = stack.ok("operator", "GET", f"/rollouts/{rollout_id}")
        return rollout if rollout["state"] != "running" else None

    done = stack.wait_until(finished, 600)
    # Only the broker's death may have cost a worker its life.
    assert len(restarts) <= 1, restarts
    assert all("Connection to broker lost" in log for log in restarts), restarts
    print(f"\nworker restarted after the broker's death: {len(restarts)} time(s)")
    targets = _targets(stack, rollout_id)
    assert (done["state"], done["failures"]) == ("completed", 0), (done, targets)
    assert {t["state"] for t in targets.values()} == {"succeeded"}, targets
    assert _healthz(stack) == 200
    detail = stack.ok("operator", "GET", f"/jobs/{job_id}")
    step = next(s for s in detail["steps"] if s["name"] == "run_upgrade")
    assert (detail["state"], step["state"]) == ("succeeded", "done"), detail
    assert step["attempts"] >= 2, step

    # Nothing lost, nothing twice: one upgrade job a server, each server on
    # the new release as Herd and the host see it, and on every host the
    # pre- and post-deployment migrations ran once each.
    assert _upgrade_jobs(engine) == dict.fromkeys(order, 1)
    for server_id, host in host_of.items():
        server = stack.server(server_id)
        assert (server["state"], server["version"]) == ("active", "4.5.2"), server
        assert webcheck.instance(host)["version"] == "4.5.2"
        assert webcheck.healthy(host)
        migrations = host.standin.calls(contains="rails db:migrate")
        assert [c["env"].get("SKIP_POST_DEPLOYMENT_MIGRATIONS") for c in migrations] == [
            "true",
            None,
        ], (host.name, migrations)
