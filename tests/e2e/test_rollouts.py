"""A rollout across six test hosts through the API, with real workers and
the real upgrade playbook: a failing canary halts it before wave two and is
back on its old release; fixed, the rollout reaches every server wave by
wave, each health-gated, even though its worker is killed mid-wave.

The budget arithmetic and maintenance windows with injected time are shown
on both databases, quickly, in tests/functional/test_rollouts.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.jobs.models import Job
from tests.e2e.stack import Stack
from tests.hosts import webcheck

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_kind", ["postgresql"]),
]
HOSTS = ["h2", "h3", "h4", "h5", "h6"]


def _fleet(stack: Stack, start_fleet: Any) -> dict[str, Any]:
    """Six hosts (the stack's h1 and five more), one server each, active."""
    more = start_fleet(HOSTS)
    hosts = {h.name: h for h in [*stack.fleet, *more]}
    for host in more:
        registration = host.registration()
        registration["capacity"] = registration.pop("slots")
        stack.ok("operator", "POST", "/hosts", json=registration)
    stack.register_hosts()
    stack.start_worker(concurrency=3).wait_ready()
    ids = [stack.order(f"s{i}.city-herd.social") for i in range(6)]
    for server_id in ids:
        stack.approve(server_id)
    for server_id in ids:
        assert stack.wait_for_state(server_id, "active", timeout=600)["version"] == "4.5.1"
    names = {h["id"]: h["name"] for h in stack.ok("operator", "GET", "/hosts")["items"]}
    return {
        server_id: hosts[names[stack.ok("operator", "GET", f"/servers/{server_id}")["host_id"]]]
        for server_id in ids
    }


def _wait(stack: Stack, rollout_id: str, states: set[str], timeout: float) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        rollout = stack.ok("operator", "GET", f"/rollouts/{rollout_id}")
        return rollout if rollout["state"] in states else None

    return stack.wait_until(done, timeout)


def _targets(stack: Stack, rollout_id: str) -> list[dict[str, Any]]:
    return stack.ok("operator", "GET", f"/rollouts/{rollout_id}/servers", params={"limit": 100})[
        "items"
    ]


def test_canary_halt_then_waves_to_every_server_through_a_worker_crash(
    stack: Stack, engine: Engine, start_fleet: Any
) -> None:
    started = time.monotonic()
    host_of = _fleet(stack, start_fleet)
    ids = list(host_of)
    provisioned = time.monotonic()
    stack.ok("operator", "POST", "/releases", json={"tag": "v4.5.2", "security": True})
    spec = {
        "target": "v4.5.2",
        "selector": {"all": True},
        "waves": [1, 2, "100%"],
        "concurrency": 3,
        "failure_budget": 0,
    }
    plan = stack.ok("operator", "POST", "/rollouts/plan", json=spec)
    assert [w["size"] for w in plan["waves"]] == [1, 2, 3]
    canary = plan["servers"][0]["server_id"]

    # 1. The release fails its health gate on the canary's host.
    host_of[canary].standin.set_unhealthy(versions=["4.5.2"])
    first = stack.ok("operator", "POST", "/rollouts", json=spec)
    halted = _wait(stack, first["id"], {"halted", "completed"}, timeout=420)
    assert halted["state"] == "halted", halted
    assert halted["state_reason"].startswith("failure budget spent: 1 server(s) failed")
    targets = _targets(stack, first["id"])
    assert [t["state"] for t in targets if t["wave"] == 0] == ["failed"]
    assert all(t["state"] == "pending" for t in targets if t["wave"] > 0)
    assert (stack.server(canary)["state"], stack.server(canary)["version"]) == ("active", "4.5.1")
    assert webcheck.instance(host_of[canary])["version"] == "4.5.1"
    stack.ok("operator", "POST", f"/rollouts/{first['id']}/abort")

    # 2. Fixed; the worker is killed while wave 2 (the last, 3 servers) runs.
    host_of[canary].standin.set_unhealthy(False)
    second = stack.ok("operator", "POST", "/rollouts", json=spec)

    def in_last_wave() -> bool:
        return any(t["state"] == "running" for t in _targets(stack, second["id"]) if t["wave"] == 2)

    stack.wait_until(in_last_wave, timeout=600)
    stack.workers[0].kill()
    time.sleep(2)
    stack.start_worker(concurrency=3).wait_ready()
    done = _wait(stack, second["id"], {"completed", "halted"}, timeout=600)
    assert done["state"] == "completed", (done, _targets(stack, second["id"]))

    targets = _targets(stack, second["id"])
    finished = sorted(targets, key=lambda t: t["finished_at"])
    # Wave by wave: no server of a wave finished before the one before it.
    assert [t["wave"] for t in finished] == sorted(t["wave"] for t in finished)
    for server_id, host in host_of.items():
        assert stack.server(server_id)["version"] == "4.5.2"
        assert webcheck.instance(host)["version"] == "4.5.2"
        assert webcheck.healthy(host)
    with Session(engine) as session:
        upgrades = session.exec(select(Job).where(Job.kind == "upgrade")).all()
    per_server: dict[str, int] = {}
    for job in upgrades:
        per_server[str(job.server_id)] = per_server.get(str(job.server_id), 0) + 1
    # The canary's failed attempt plus one upgrade each: nobody twice.
    assert per_server == {s: 2 if s == canary else 1 for s in ids}
    print(
        f"\nprovisioning {provisioned - started:.0f} s, "
        f"rollouts {time.monotonic() - provisioned:.0f} s"
    )
