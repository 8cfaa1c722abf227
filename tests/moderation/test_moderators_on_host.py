"""Moderator access on a real test host: staff assign a team of two, the
`moderators` job runs the real moderators.yml over SSH, and each moderator's
account has the Moderator role and a token that works against the admin
API with the moderation scopes only; a member who leaves loses both; the
add-on's end takes everything away on the host and in Herd. No token ever
shows in a job's events, steps or errors, nor in the stand-in's call log."""

from __future__ import annotations

import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.billing import work
from controlplane.crypto import secret_box
from controlplane.fleet.models import Host
from controlplane.fleet.placement import Slot
from controlplane.jobs.models import Job, JobEvent, JobState, JobStep
from controlplane.moderation.models import ModeratorAccess
from controlplane.moderation.queue import webhook_secret
from controlplane.moderation.sync import webhook_url
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from provisioning.registry import pipelines
from tests.hosts import webcheck
from tests.hosts.harness import TestFleet
from tests.moderation.staffing import make_team, order_moderation, staff_users
from tests.provisioning.placed import SETUP, Placed, create_setup_job, run_to_success


def _reports_url(engine: Engine, server_id: uuid.UUID) -> str:
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        assert server.slot is not None
        host = session.get(Host, server.host_id)
        assert host is not None
        return f"http://{host.address}:{Slot.on(host, server.slot).web_port}/api/v1/admin/reports"


def _status(url: str, token: str) -> int:
    return webcheck.get(url, {"Authorization": f"Bearer {token}"})[0]


def _tokens(engine: Engine, server_id: uuid.UUID) -> dict[str, str]:
    with Session(engine) as session:
        rows = session.exec(select(ModeratorAccess).where(ModeratorAccess.server_id == server_id))
        return {
            row.mastodon_username: secret_box().decrypt(row.token_encrypted)
            for row in rows
            if row.token_encrypted
        }


def _pending_job(engine: Engine, server_id: uuid.UUID) -> uuid.UUID:
    with Session(engine) as session:
        job = session.exec(
            select(Job).where(
                Job.server_id == server_id,
                Job.kind == "moderators",
                Job.state == JobState.pending,
            )
        ).one()
        return job.id


def _kept_text(engine: Engine) -> str:
    """Everything Herd kept of its jobs: events, step results and errors."""
    with Session(engine) as session:
        events = [e.model_dump(mode="json") for e in session.exec(select(JobEvent))]
        steps = [s.model_dump(mode="json") for s in session.exec(select(JobStep))]
        jobs = [j.error for j in session.exec(select(Job))]
    return json.dumps([events, steps, jobs])


@pytest.mark.hosts
@pytest.mark.slow
@pytest.mark.postgres
# Herd's own database plays no part in what lands on the host: one kind is enough.
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_moderators_get_and_lose_access_on_a_host(
    db_kind: str, engine: Engine, client: TestClient, placed: tuple[Placed, TestFleet]
) -> None:
    setup, fleet = placed
    standin = fleet["h1"].standin
    server_id = setup.server_id
    run_to_success(engine, create_setup_job(engine, setup), {"setup": SETUP})
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        server.state = ServerState.active  # as the provision pipeline leaves it
        session.add(server)
        session.commit()
    order_moderation(engine, server_id)
    (alice, _), (bob, _) = staff_users(engine, 2)
    team = make_team(client, setup.operator, [(alice, "alice_mod"), (bob, "bob_mod")])

    assigned = client.put(
        f"/api/v1/servers/{server_id}/moderation",
        headers=setup.operator,
        json={"team_id": team["id"], "response_hours": 4},
    )
    assert assigned.status_code == 200, assigned.text
    run_to_success(engine, uuid.UUID(assigned.json()["job_id"]), pipelines())

    database = f"mastodon_{server_id.hex}"
    accounts = standin.databases()[database]["accounts"]
    assert accounts["alice_mod"]["role"] == "Moderator"
    assert accounts["bob_mod"]["role"] == "Moderator"
    assert accounts["alice_mod"]["confirmed"] is True
    tokens = _tokens(engine, server_id)
    assert sorted(tokens) == ["alice_mod", "bob_mod"]
    url = _reports_url(engine, server_id)
    assert _status(url, tokens["alice_mod"]) == 200
    assert _status(url, tokens["bob_mod"]) == 200
    # The same account with a token lacking the reports scope is refused.
    installed = json.loads(fleet["h1"].path("/opt/standin/tokens.json").read_text())
    alice_account = installed[tokens["alice_mod"]]["account_id"]
    assert sorted(installed[tokens["alice_mod"]]["scopes"]) == sorted(
        [
            "admin:read:accounts",
            "admin:read:domain_blocks",
            "admin:read:reports",
            "admin:write:accounts",
            "admin:write:domain_blocks",
            "admin:write:reports",
        ]
    )
    standin.add_token("w" * 43, alice_account, ["admin:read:accounts", "read"])
    assert _status(url, "w" * 43) == 403
    # Reports reach Herd by webhook, signed with the secret Herd keeps.
    with Session(engine) as session:
        secret = webhook_secret(session, server_id)
    hooks = standin.webhooks()
    assert list(hooks) == [webhook_url(server_id)]
    assert hooks[webhook_url(server_id)]["secret"] == secret
    assert set(hooks[webhook_url(server_id)]["events"]) == {"report.created", "report.updated"}
    shown = client.get(f"/api/v1/servers/{server_id}/moderation", headers=setup.owner).json()
    assert [(m["mastodon_username"], m["state"]) for m in shown["moderators"]] == [
        ("alice_mod", "granted"),
        ("bob_mod", "granted"),
    ]
    with Session(engine) as session:
        row = session.exec(
            select(ModeratorAccess).where(ModeratorAccess.mastodon_username == "alice_mod")
        ).one()
        assert row.account_id == alice_account

    # Bob leaves the team: his role and token go; Alice keeps hers.
    left = client.delete(
        f"/api/v1/moderation/teams/{team['id']}/members/{bob}", headers=setup.operator
    )
    assert left.status_code == 200, left.text
    run_to_success(engine, uuid.UUID(left.json()["jobs"][0]), pipelines())
    assert _status(url, tokens["bob_mod"]) == 401
    assert _status(url, tokens["alice_mod"]) == 200
    assert standin.databases()[database]["accounts"]["bob_mod"]["role"] is None
    assert sorted(_tokens(engine, server_id)) == ["alice_mod"]

    # The organisation ends the add-on: all access goes, on the host and in Herd.
    cancelled = client.delete(f"/api/v1/servers/{server_id}/addons/moderation", headers=setup.owner)
    assert cancelled.status_code == 202, cancelled.text
    work.apply_addon(engine, uuid.UUID(cancelled.json()["id"]))
    run_to_success(engine, _pending_job(engine, server_id), pipelines())
    assert _status(url, tokens["alice_mod"]) == 401
    assert standin.databases()[database]["accounts"]["alice_mod"]["role"] is None
    assert _tokens(engine, server_id) == {}
    assert standin.webhooks() == {}
    with Session(engine) as session:
        assert (
            session.exec(
                select(ModeratorAccess).where(col(ModeratorAccess.token_encrypted).is_not(None))
            ).all()
            == []
        )

    kept = _kept_text(engine) + json.dumps(standin.calls())
    for value in [*tokens.values(), secret]:
        assert value not in kept
    assert "Install and revoke the admin API tokens" in kept
