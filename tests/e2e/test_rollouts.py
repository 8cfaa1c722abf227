"""Rollouts across six test hosts through the API, with real workers and
the real upgrade playbook, on one fleet provisioned once (provisioning is
most of the cost), each rollout to a newer release than the last:

1. v4.5.2: a failing canary halts the rollout before wave two and is back
   on its old release;
2. v4.5.2, fixed: the rollout reaches every server wave by wave, each
   health-gated, even though its worker is killed mid-wave;
3. v4.5.3: failures on k = 2 servers, with a budget that tolerates k - 1,
   halt it exactly at the k-th failure; the failed servers are rolled back
   and no server of a later wave is touched;
4. v4.5.4: servers with a maintenance window wait while the others are
   upgraded, and start when the window opens on an injected clock: the test
   plays the beat's part, calling the beat task's own `advance_all` with
   its instant, while a worker without beat runs the jobs.

The same budget and window arithmetic runs on both databases, quickly and
with faked jobs, in tests/functional/test_rollouts.py.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.jobs.models import Job
from controlplane.rollouts import engine as rollout_engine
from controlplane.settings import get_settings
from tests.e2e.stack import Stack
from tests.hosts import webcheck
from tests.hosts.mastodon_repo import DEFAULT_TAGS, MastodonRepo, build_mastodon_repo, parse_tag

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_kind", ["postgresql"]),
    pytest.mark.usefixtures("short_backoffs"),
]
HOSTS = ["h2", "h3", "h4", "h5", "h6"]
# Two more patch releases than the session's repository: each rollout on
# the shared fleet needs a release newer than the one before.
TAGS = tuple(sorted({*DEFAULT_TAGS, "v4.5.3", "v4.5.4"}, key=parse_tag))
# Part 4's injected clock starts on a Monday at noon; the windows open on
# the Tuesday (ISO weekday 2) at 03:00 in the organisation's time zone.
MONDAY_NOON = datetime(2027, 1, 4, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def mastodon_repo(tmp_path_factory: pytest.TempPathFactory) -> MastodonRepo:
    """This module's fake Mastodon repository (replaces the session's)."""
    return build_mastodon_repo(tmp_path_factory.mktemp("mastodon-repo") / "mastodon.git", TAGS)


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


def _upgrades(engine: Engine, tag: str) -> Counter[str]:
    """Upgrade jobs to a release, per server id."""
    with Session(engine) as session:
        jobs = session.exec(select(Job).where(Job.kind == "upgrade")).all()
    return Counter(str(j.server_id) for j in jobs if j.params.get("version") == tag)


def _on_host(host: Any) -> str:
    """The version the server's own web process reports."""
    return webcheck.instance(host)["version"]


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def test_rollouts_on_a_fleet_of_six_hosts(
    stack: Stack, engine: Engine, start_fleet: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    marks = [("start", time.monotonic())]
    host_of = _fleet(stack, start_fleet)
    marks.append(("provisioning", time.monotonic()))
    _canary_halts_then_waves_through_a_worker_crash(stack, engine, host_of)
    marks.append(("canary and crash", time.monotonic()))
    _budget_spent_by_the_kth_failure(stack, engine, host_of)
    marks.append(("budget", time.monotonic()))
    _windows_open_on_an_injected_clock(stack, engine, host_of, monkeypatch)
    marks.append(("windows", time.monotonic()))
    print(
        "\n"
        + ", ".join(
            f"{name} {end - begin:.0f} s" for (_, begin), (name, end) in itertools.pairwise(marks)
        )
    )


def _canary_halts_then_waves_through_a_worker_crash(
    stack: Stack, engine: Engine, host_of: dict[str, Any]
) -> None:
    ids = list(host_of)
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
    halted = _wait(stack, first["id"], {"halted", "completed"}, timeout=900)
    assert halted["state"] == "halted", halted
    assert halted["state_reason"].startswith("failure budget spent: 1 server(s) failed")
    targets = _targets(stack, first["id"])
    assert [t["state"] for t in targets if t["wave"] == 0] == ["failed"]
    assert all(t["state"] == "pending" for t in targets if t["wave"] > 0)
    assert (stack.server(canary)["state"], stack.server(canary)["version"]) == ("active", "4.5.1")
    assert _on_host(host_of[canary]) == "4.5.1"
    stack.ok("operator", "POST", f"/rollouts/{first['id']}/abort")

    # 2. Fixed; the worker is killed while wave 2 (the last, 3 servers) runs.
    host_of[canary].standin.set_unhealthy(False)
    second = stack.ok("operator", "POST", "/rollouts", json=spec)

    def in_last_wave() -> bool:
        return any(t["state"] == "running" for t in _targets(stack, second["id"]) if t["wave"] == 2)

    stack.wait_until(in_last_wave, timeout=900)
    stack.workers[-1].kill()
    time.sleep(2)
    stack.start_worker(concurrency=3).wait_ready()
    done = _wait(stack, second["id"], {"completed", "halted"}, timeout=900)
    assert done["state"] == "completed", (done, _targets(stack, second["id"]))

    targets = _targets(stack, second["id"])
    finished = sorted(targets, key=lambda t: t["finished_at"])
    # Wave by wave: no server of a wave finished before the one before it.
    assert [t["wave"] for t in finished] == sorted(t["wave"] for t in finished)
    for server_id, host in host_of.items():
        assert stack.server(server_id)["version"] == "4.5.2"
        assert _on_host(host) == "4.5.2"
        assert webcheck.healthy(host)
    # The canary's failed attempt plus one upgrade each: nobody twice.
    assert _upgrades(engine, "v4.5.2") == {s: 2 if s == canary else 1 for s in ids}


def _budget_spent_by_the_kth_failure(stack: Stack, engine: Engine, host_of: dict[str, Any]) -> None:
    """k = 2 servers fail. Herd's budget counts the failures a rollout
    tolerates (part 1 halts at the first failure with a budget of 0), so a
    budget of k - 1 is spent by the k-th failure: here in wave 1, with one
    failure already tolerated in wave 0 and wave 2 still to come."""
    stack.ok("operator", "POST", "/releases", json={"tag": "v4.5.3", "security": True})
    spec = {
        "target": "v4.5.3",
        "selector": {"all": True},
        "waves": [2, 1, "100%"],
        "concurrency": 2,
        "failure_budget": 1,
    }
    plan = stack.ok("operator", "POST", "/rollouts/plan", json=spec)
    waves = [[s["server_id"] for s in plan["servers"] if s["wave"] == w] for w in range(3)]
    assert [len(w) for w in waves] == [2, 1, 3]
    failing = [waves[0][0], waves[1][0]]
    upgraded = waves[0][1]
    for server_id in failing:
        host_of[server_id].standin.set_unhealthy(versions=["4.5.3"])
    for server_id in waves[2]:
        host_of[server_id].standin.clear_calls()

    rollout = stack.ok("operator", "POST", "/rollouts", json=spec)
    halted = _wait(stack, rollout["id"], {"halted", "completed"}, timeout=1800)
    assert halted["state"] == "halted", (halted, _targets(stack, rollout["id"]))
    assert halted["state_reason"].startswith(
        "failure budget spent: 2 server(s) failed, 1 tolerated (wave 1)"
    ), halted["state_reason"]
    assert halted["failures"] == 2
    states = {t["server_id"]: t["state"] for t in _targets(stack, rollout["id"])}
    assert states == {
        failing[0]: "failed",
        upgraded: "succeeded",
        failing[1]: "failed",
        **dict.fromkeys(waves[2], "pending"),
    }
    for server_id in failing:  # rolled back to the release they ran
        assert (stack.server(server_id)["state"], stack.server(server_id)["version"]) == (
            "active",
            "4.5.2",
        )
        assert _on_host(host_of[server_id]) == "4.5.2"
        assert webcheck.healthy(host_of[server_id])
    assert (stack.server(upgraded)["version"], _on_host(host_of[upgraded])) == ("4.5.3", "4.5.3")
    # Only the servers the engine started got an upgrade job; wave 2 was not touched.
    assert _upgrades(engine, "v4.5.3") == dict.fromkeys([*failing, upgraded], 1)
    for server_id in waves[2]:
        assert stack.server(server_id)["version"] == "4.5.2"
        assert _on_host(host_of[server_id]) == "4.5.2"
        assert host_of[server_id].standin.commands() == []  # not one command on its host

    stack.ok("operator", "POST", f"/rollouts/{rollout['id']}/abort")
    for server_id in failing:
        host_of[server_id].standin.set_unhealthy(False)


def _windows_open_on_an_injected_clock(
    stack: Stack, engine: Engine, host_of: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The beat task is `advance_all(engine, utcnow(), probe)`; here the test
    calls the same function with its own instant. The worker runs without
    beat, so no tick on the real clock interferes, and runs the real jobs
    this process's ticks send it."""
    import provisioning.celery_app
    from provisioning.rollouts import probe

    for worker in stack.workers:
        worker.stop()
    # Jobs are sent when the tick's transaction commits, from this process:
    # to the stack's broker, whatever settings were current at import.
    monkeypatch.setattr(
        provisioning.celery_app, "celery_app", provisioning.celery_app.make_celery(get_settings())
    )
    stack.start_worker(concurrency=3, beat=False).wait_ready()

    ids = list(host_of)
    windowed, free = ids[:2], ids[2:4]
    org = stack.world.ids["org_a"]
    windows = [
        {"weekday": 2, "start": "03:00", "duration_minutes": 120, "server_id": server_id}
        for server_id in windowed
    ]
    zone = stack.ok(
        "owner", "PUT", f"/organisations/{org}/maintenance-windows", json={"windows": windows}
    )["timezone"]
    opens = datetime(2027, 1, 5, 3, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    before = {server_id: _on_host(host_of[server_id]) for server_id in windowed}
    for server_id in windowed:
        host_of[server_id].standin.clear_calls()
    stack.ok("operator", "POST", "/releases", json={"tag": "v4.5.4", "security": True})
    spec = {
        "target": "v4.5.4",
        "selector": {"servers": [*windowed, *free]},
        "waves": ["100%"],
        "concurrency": 4,
    }
    rollout_id = stack.ok("operator", "POST", "/rollouts", json=spec)["id"]
    clock = [MONDAY_NOON]

    def tick(seconds: float = 1) -> dict[str, dict[str, Any]]:
        rollout_engine.advance_all(engine, clock[0], probe)
        clock[0] += timedelta(seconds=seconds)
        return {t["server_id"]: t for t in _targets(stack, rollout_id)}

    # Monday noon, outside the windows: the others are upgraded, these wait.
    def others_upgraded() -> dict[str, dict[str, Any]] | None:
        targets = tick()
        return targets if all(targets[s]["state"] == "succeeded" for s in free) else None

    targets = stack.wait_until(others_upgraded, timeout=1200)
    assert clock[0] < opens
    for server_id in free:
        assert _on_host(host_of[server_id]) == "4.5.4"
    for server_id in windowed:
        assert (targets[server_id]["state"], targets[server_id]["job_id"]) == ("pending", None)
        assert _on_host(host_of[server_id]) == before[server_id]
        assert host_of[server_id].standin.commands() == []
    assert not _upgrades(engine, "v4.5.4").keys() & set(windowed)
    assert stack.ok("operator", "GET", f"/rollouts/{rollout_id}")["state"] == "running"

    # A minute before the windows open, still nothing; at the opening, they start.
    clock[0] = opens - timedelta(minutes=1)
    assert {tick(0)[s]["state"] for s in windowed} == {"pending"}
    clock[0] = opens
    targets = tick()
    for server_id in windowed:
        assert targets[server_id]["state"] == "running"
        assert _instant(targets[server_id]["started_at"]) == opens

    def completed() -> dict[str, Any] | None:
        tick()
        rollout = stack.ok("operator", "GET", f"/rollouts/{rollout_id}")
        return rollout if rollout["state"] != "running" else None

    done = stack.wait_until(completed, timeout=1200)
    assert done["state"] == "completed", (done, _targets(stack, rollout_id))
    assert opens < _instant(done["finished_at"]) < opens + timedelta(hours=2)
    for server_id in [*windowed, *free]:
        assert stack.server(server_id)["version"] == "4.5.4"
        assert _on_host(host_of[server_id]) == "4.5.4"
    assert _upgrades(engine, "v4.5.4") == dict.fromkeys([*windowed, *free], 1)
