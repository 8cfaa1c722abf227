"""A staff member upgrades an active server through the API; the real
upgrade playbook runs on a test host in Mastodon's documented order, and a
release that fails its health gate is rolled back to the one before.

The test provisions its server first (about a minute). It runs on PostgreSQL
with Redis only: the job's decisions are tested on both databases, quickly,
in tests/functional/test_upgrade_pipeline.py, and both brokers carry a job
end to end in test_order_to_active.py.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.fleet.placement import Slot
from controlplane.servers.models import Server
from tests.e2e.stack import Stack
from tests.hosts import webcheck
from tests.hosts.host import TestHost

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_kind", ["postgresql"]),
    pytest.mark.usefixtures("short_backoffs"),
]

# Mastodon's upgrade guide as the stand-in records it (tests/playbooks/
# test_playbooks_on_hosts.py checks the playbook alone in the same terms):
# Ruby for the new .ruby-version, gems, JS packages, pre-deployment
# migrations, assets, then sidekiq restarted (its process starts).
UPGRADE_STEPS = [
    "rbenv install 4.0.1",
    "bundle install --jobs 4",
    "yarn install --immutable",
    "bundle exec rails db:migrate",
    "bundle exec rails assets:precompile",
    "systemctl restart mastodon-sidekiq.service",
    "mastodon-standin-worker",
]

# rollback.yml after it, as the stand-in records it: the services stopped
# behind the maintenance page, the previous release's gems, packages and
# assets (its database restored from the pre-upgrade backup with pg_restore,
# which the stand-in does not record), the services started again.
ROLLBACK_STEPS = [
    "systemctl stop mastodon-web.service",
    "systemctl stop mastodon-sidekiq.service",
    "bundle install --jobs 4",
    "yarn install --immutable",
    "bundle exec rails assets:precompile",
    "systemctl start mastodon-sidekiq.service",
    "systemctl start mastodon-web.service",
    "mastodon-standin-web",
]


def is_subsequence(expected: list[str], actual: list[str]) -> bool:
    remaining = iter(actual)
    return all(step in remaining for step in expected)


def provision(stack: Stack) -> tuple[str, TestHost]:
    stack.register_hosts()
    stack.start_worker()
    server_id = stack.order("social.city-herd.social")
    stack.approve(server_id)
    server = stack.wait_for_state(server_id, "active")
    assert server["version"] == "4.5.1"
    return server_id, stack.fleet["h1"]


def upgrade(stack: Stack, server_id: str, version: str) -> dict[str, Any]:
    response = stack.call(
        "operator", "POST", f"/servers/{server_id}/upgrade", json={"version": version}
    )
    assert response.status_code == 202, response.text
    return response.json()


def finished_job(stack: Stack, job_id: str, timeout: float) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        job = stack.ok("operator", "GET", f"/jobs/{job_id}")
        return job if job["state"] in {"succeeded", "failed", "cancelled"} else None

    return stack.wait_until(done, timeout)


def steps_called(host: TestHost) -> list[str]:
    """The stand-in's calls that change something, with the slot's unit
    names (mastodon0-web…) written as the guide writes them (mastodon-web…)."""
    return [
        re.sub(r"\bmastodon\d+-", "mastodon-", call["command"])
        for call in host.standin.calls()
        if not call["command"].startswith(
            ("systemctl show", "systemctl is-", "systemctl daemon", "bundle check")
        )
    ]


def release_record(engine: Engine, server_id: str, host: TestHost) -> dict[str, Any]:
    with Session(engine) as session:
        server = session.get(Server, uuid.UUID(server_id))
        assert server is not None
        assert server.slot is not None
        user = Slot(server.slot).unix_user
    return json.loads(host.read_text(f"/home/{user}/herd/state.json"))


def test_a_failed_upgrade_is_rolled_back_and_a_fixed_one_runs_the_documented_steps(
    stack: Stack, engine: Engine
) -> None:
    """One server (provisioning is most of the cost): a release failing its
    health gate is rolled back; once fixed, it upgrades in the guide's order."""
    server_id, host = provision(stack)
    # 4.6.0 boots but its /health answers 503; 4.5.1 stays healthy.
    host.standin.set_unhealthy(versions=["4.6.0"])
    host.standin.clear_calls()

    job = finished_job(stack, upgrade(stack, server_id, "v4.6.0")["id"], timeout=420)
    assert job["state"] == "failed", job
    assert job["error"].startswith("finish_rollback: rolled back to v4.5.1: "), job["error"]
    assert "the upgrade to v4.6.0 failed (health gate: /health answered 503)" in job["error"]
    assert [s["name"] for s in job["steps"] if "skipped" not in s["result"]] == [
        "mark_upgrading",
        "run_upgrade",
        "health_gate",
        "run_rollback",
        "rollback_health_gate",
        "finish_rollback",
    ]

    # The upgrade went all the way on the host, then rollback.yml put the
    # previous release and this upgrade's backup back.
    steps = steps_called(host)
    assert steps[: len(UPGRADE_STEPS)] == UPGRADE_STEPS, steps
    post_deployment = [i for i, c in enumerate(steps) if c == "bundle exec rails db:migrate"][1]
    rollback = steps[post_deployment + 1 :]
    assert is_subsequence(ROLLBACK_STEPS, rollback), rollback
    record = release_record(engine, server_id, host)
    assert record["version"] == "v4.5.1"
    assert record["rolled_back_from"] == "v4.6.0"
    assert record["restored_backup"].startswith("pre-upgrade-v4.6.0-")

    assert webcheck.instance(host)["version"] == "4.5.1"
    assert webcheck.healthy(host)
    server = stack.server(server_id)
    assert (server["state"], server["version"]) == ("active", "4.5.1")
    assert server["state_reason"].startswith("rolled back to v4.5.1")

    # Once the release is fixed, the same server upgrades again, from a
    # backup of its own (not the one the rollback restored), in the guide's
    # order. Its Ruby was built by the failed attempt (rbenv's `creates`),
    # whose first step it was (above).
    host.standin.set_unhealthy(False)
    host.standin.clear_calls()
    job = upgrade(stack, server_id, "v4.6.0")
    assert stack.server(server_id)["state"] == "upgrading"
    again = finished_job(stack, job["id"], timeout=300)
    assert again["state"] == "succeeded", again
    assert [s["name"] for s in again["steps"] if "skipped" not in s["result"]] == [
        "mark_upgrading",
        "run_upgrade",
        "health_gate",
        "activate",
    ]
    steps = steps_called(host)
    assert steps[: len(UPGRADE_STEPS) - 1] == UPGRADE_STEPS[1:], steps
    assert (
        steps.index("systemctl reload mastodon-web.service")
        < steps.index("systemctl restart mastodon-streaming.service")
        < len(steps) - 1
    ), steps
    # Post-deployment migrations last, and only the first run skipped them.
    assert steps[-1] == "bundle exec rails db:migrate", steps
    migrations = host.standin.calls(contains="rails db:migrate")
    assert [c["env"].get("SKIP_POST_DEPLOYMENT_MIGRATIONS") for c in migrations] == ["true", None]
    assert webcheck.instance(host)["version"] == "4.6.0"
    server = stack.server(server_id)
    assert (server["state"], server["version"]) == ("active", "4.6.0")
    assert (
        release_record(engine, server_id, host)["pre_upgrade_backup"] != (record["restored_backup"])
    )
