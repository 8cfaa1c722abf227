"""Starting an upgrade through the API: what is accepted, what is refused,
and that a refusal changes nothing. The job's own run is covered by
test_upgrade_pipeline.py (steps with the host faked) and
tests/e2e/test_upgrade.py (a real host)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.audit.models import AuditEntry
from controlplane.jobs.models import Job, JobState
from controlplane.problems import Conflict
from controlplane.servers import upgrades
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.servers.upgrades import Release
from provisioning.registry import pipelines
from tests.factories import World, fingerprint

RUNNING = "4.5.1"


@pytest.fixture
def server_id(engine: Engine, world: World) -> uuid.UUID:
    """An active, placed server on 4.5.1 with no job under way."""
    with Session(engine) as session:
        row = Server(
            organisation_id=world.ids["org"],
            plan_id=world.ids["plan"],
            host_id=world.ids["host"],
            slot=0,
            domain="up.org-a-herd.social",
            title="Up",
            state=ServerState.active,
            version=RUNNING,
        )
        session.add(row)
        session.commit()
        return row.id


def _upgrade(
    client: TestClient, world: World, server_id: uuid.UUID, version: object, who: str = "operator"
):
    return client.post(
        f"/api/v1/servers/{server_id}/upgrade",
        json={"version": version},
        headers=world.headers(who),
    )


def test_an_upgrade_records_its_job_moves_the_server_and_is_audited(
    client: TestClient, world: World, engine: Engine, server_id: uuid.UUID
) -> None:
    response = _upgrade(client, world, server_id, "v4.6.0")
    assert response.status_code == 202, response.text
    job = response.json()
    assert (job["kind"], job["state"], job["server_id"]) == ("upgrade", "pending", str(server_id))
    assert job["params"] == {"version": "v4.6.0", "from_version": "v4.5.1"}

    detail = client.get(f"/api/v1/jobs/{job['id']}", headers=world.headers("operator")).json()
    assert [s["name"] for s in detail["steps"]] == pipelines()["upgrade"].step_names
    assert [s["name"] for s in detail["steps"]] == [
        "mark_upgrading",
        "run_upgrade",
        "health_gate",
        "activate",
        "run_rollback",
        "rollback_health_gate",
        "finish_rollback",
    ]

    # The server is upgrading at once, so a second request cannot start a
    # second job; the timeline names who asked.
    shown = client.get(f"/api/v1/servers/{server_id}", headers=world.headers("owner")).json()
    assert (shown["state"], shown["version"]) == ("upgrading", RUNNING)
    events = client.get(
        f"/api/v1/servers/{server_id}/events", headers=world.headers("owner")
    ).json()["items"]
    assert [(e["event"], e["to_state"], e["actor"]) for e in events] == [
        ("upgrade", "upgrading", "ops@provider.example-herd.org")
    ]

    with Session(engine) as session:
        (entry,) = session.exec(
            select(AuditEntry).where(AuditEntry.action == "server.upgrade")
        ).all()
    assert entry.target_id == str(server_id)
    assert entry.organisation_id == world.ids["org"]
    assert entry.actor_label == "ops@provider.example-herd.org"
    assert entry.details == {"from": "v4.5.1", "to": "v4.6.0", "job_id": job["id"]}
    assert entry.request_id

    again = _upgrade(client, world, server_id, "v4.6.0")
    assert again.status_code == 409
    assert again.json()["type"] == "urn:herd:problem:invalid-transition"


def test_a_pre_release_tag_is_accepted(
    client: TestClient, world: World, server_id: uuid.UUID
) -> None:
    response = _upgrade(client, world, server_id, "v4.6.0-rc.1")
    assert response.status_code == 202, response.text
    assert response.json()["params"]["version"] == "v4.6.0-rc.1"


@pytest.mark.parametrize(
    "version",
    [
        "4.6.0",
        "v4.6",
        "V4.6.0",
        "latest",
        "v4.06.0",
        "v4.6.0+glitch",
        "v4.6.0-",
        "",
        460,
    ],
)
def test_a_version_that_is_not_a_release_tag_is_422(
    client: TestClient, world: World, engine: Engine, server_id: uuid.UUID, version: object
) -> None:
    before = fingerprint(engine)
    response = _upgrade(client, world, server_id, version)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:herd:problem:invalid-input"
    assert fingerprint(engine) == before


def test_a_body_without_a_version_is_422(
    client: TestClient, world: World, server_id: uuid.UUID
) -> None:
    for body in ({}, {"version": "v4.6.0", "force": True}):
        response = client.post(
            f"/api/v1/servers/{server_id}/upgrade", json=body, headers=world.headers("operator")
        )
        assert response.status_code == 422, body
        assert response.json()["type"] == "urn:herd:problem:invalid-input"


@pytest.mark.parametrize("which", ["requested_server", "suspended_server", "failed_server"])
def test_a_server_that_is_not_active_is_409(
    client: TestClient, world: World, engine: Engine, which: str
) -> None:
    before = fingerprint(engine)
    response = _upgrade(client, world, world.ids[which], "v4.6.0")
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == "urn:herd:problem:invalid-transition"
    assert "only an active server can be upgraded" in problem["detail"]
    assert fingerprint(engine) == before


@pytest.mark.parametrize(
    ("version", "detail"),
    [
        ("v4.5.1", "already runs 4.5.1"),
        ("v4.5.0", "v4.5.0 is older than 4.5.1"),
        ("v4.4.8", "v4.4.8 is older than 4.5.1"),
        ("v4.5.1-rc.2", "v4.5.1-rc.2 is older than 4.5.1"),
    ],
)
def test_the_running_or_an_older_release_is_409(
    client: TestClient,
    world: World,
    engine: Engine,
    server_id: uuid.UUID,
    version: str,
    detail: str,
) -> None:
    before = fingerprint(engine)
    response = _upgrade(client, world, server_id, version)
    assert response.status_code == 409, response.text
    problem = response.json()
    assert problem["type"] == "urn:herd:problem:conflict"
    assert detail in problem["detail"]
    assert fingerprint(engine) == before


def test_a_server_with_an_unfinished_job_or_no_known_version_is_409(
    client: TestClient, world: World, engine: Engine, server_id: uuid.UUID
) -> None:
    with Session(engine) as session:
        session.add(Job(kind="inspect", server_id=server_id, state=JobState.running))
        session.commit()
    before = fingerprint(engine)
    busy = _upgrade(client, world, server_id, "v4.6.0")
    assert busy.status_code == 409
    assert "inspect job" in busy.json()["detail"]
    assert fingerprint(engine) == before

    # The world's own active server never reported a version.
    unknown = _upgrade(client, world, world.ids["server"], "v4.6.0")
    assert unknown.status_code == 409
    assert "not known" in unknown.json()["detail"]
    assert fingerprint(engine) == before


def test_customers_and_unknown_servers_are_refused(
    client: TestClient, world: World, engine: Engine, server_id: uuid.UUID
) -> None:
    before = fingerprint(engine)
    assert _upgrade(client, world, server_id, "v4.6.0", who="owner").status_code == 403
    assert _upgrade(client, world, uuid.uuid4(), "v4.6.0").status_code == 404
    assert fingerprint(engine) == before


def test_a_rollout_starts_an_upgrade_under_its_own_label(
    engine: Engine, world: World, server_id: uuid.UUID
) -> None:
    """Rollouts call the service without a request or a principal."""
    with Session(engine) as session:
        job = upgrades.start_upgrade(session, "rollout wave 1", server_id, "v4.5.2")
        session.info.clear()  # no broker here
        session.commit()
        assert job.params == {"version": "v4.5.2", "from_version": "v4.5.1"}
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "server.upgrade")).one()
        assert (entry.actor_label, entry.actor_user_id) == ("rollout wave 1", None)
        row = session.get(Server, server_id)
        assert row is not None
        assert row.state == ServerState.upgrading
        # A second wave reaching the same server is refused.
        with pytest.raises(Conflict):
            upgrades.start_upgrade(session, "rollout wave 2", server_id, "v4.6.0")


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("v4.5.1", "v4.5.2"),
        ("v4.5.9", "v4.5.10"),
        ("v4.6.0-rc.1", "v4.6.0"),
        ("v4.6.0-alpha.1", "v4.6.0-beta.1"),
        ("v4.6.0-beta.2", "v4.6.0-beta.11"),
        ("v4.6.0-rc.1", "v4.6.0-rc.1.1"),
        ("v4.6.0-1", "v4.6.0-alpha"),
        ("v4.5.3", "v4.6.0-beta.1"),
    ],
)
def test_releases_are_ordered_as_semver_orders_them(older: str, newer: str) -> None:
    low, high = Release.from_tag(older), Release.from_tag(newer)
    assert low is not None
    assert high is not None
    assert low < high
    assert not high < low


def test_a_reported_version_reads_as_its_release() -> None:
    assert Release.from_reported("4.5.1+glitch") == Release(4, 5, 1)
    assert Release.from_reported("4.6.0-rc.1") == Release(4, 6, 0, ("rc", "1"))
    assert Release.from_reported(None) is None
    assert Release.from_reported("nightly") is None
