"""Moderation staffing through the API, on both databases: teams and their
validation, assigning a team to a server (only with the add-on, only by
staff), what the organisation sees, the tokens kept encrypted, and the
add-on's end taking the access away in Herd."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.audit.models import AuditEntry
from controlplane.billing import work
from controlplane.crypto import secret_box
from controlplane.jobs.models import Job, JobState
from controlplane.moderation import access, sync
from controlplane.moderation.models import AccessState, Assignment, ModeratorAccess
from controlplane.problems import PROBLEM_JSON
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import User
from provisioning import moderation_tasks
from provisioning.celery_app import celery_app
from provisioning.registry import redactor_for
from tests.factories import World, build_world, fingerprint
from tests.moderation.staffing import COVERAGE, make_team, order_moderation, staff_users

TEAMS = "/api/v1/moderation/teams"


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)


def _actions(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditEntry.action)
                .where(col(AuditEntry.action).startswith("moderation."))
                .order_by(col(AuditEntry.id))
            ).all()
        )


def _jobs(engine: Engine, server_id: uuid.UUID) -> list[Job]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(Job).where(Job.server_id == server_id, Job.kind == "moderators")
            ).all()
        )


def _access(engine: Engine, server_id: uuid.UUID) -> dict[str, ModeratorAccess]:
    with Session(engine) as session:
        rows = session.exec(select(ModeratorAccess).where(ModeratorAccess.server_id == server_id))
        return {row.mastodon_username: row for row in rows}


def _plan(engine: Engine, server_id: uuid.UUID) -> dict[str, list[str]]:
    """The `moderators` job's first step, as a worker runs it."""
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        changes = sync.plan_access(session, server)
        session.commit()
        return changes


def _confirm_run(engine: Engine, server_id: uuid.UUID) -> dict[str, list[str]]:
    """The second step's bookkeeping after a successful playbook run, with
    the account ids the host would report."""
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        variables, sent = sync.playbook_input(session, server)
        granted = {
            g["username"]: str(1000 + n)
            for n, g in enumerate(variables["mastodon_moderators_grant"])
        }
        done = sync.confirm(session, sent, granted, variables["mastodon_moderators_revoke"])
        session.commit()
        return done


def test_staff_build_a_team_and_every_change_is_audited(
    client: TestClient, world: World, engine: Engine
) -> None:
    (alice, alice_mail), (bob, _) = staff_users(engine, 2)
    team = make_team(client, world.headers("operator"), [(alice, "alice_mod"), (bob, "bob")])
    assert team["languages"] == ["en", "de-AT"]
    assert team["timezone"] == "Europe/Berlin"
    assert team["coverage"] == COVERAGE
    assert next((m["mastodon_username"], m["email"]) for m in team["members"]) == (
        "alice_mod",
        alice_mail,
    )
    assert team["servers"] == 0

    url = f"{TEAMS}/{team['id']}"
    changed = client.put(
        url,
        headers=world.headers("staff_admin"),
        json={"name": "Early birds", "languages": ["fr"], "timezone": "UTC", "coverage": []},
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["name"], changed.json()["languages"]) == ("Early birds", ["fr"])
    listed = client.get(TEAMS, headers=world.headers("operator")).json()["items"]
    assert [t["name"] for t in listed] == ["Early birds"]
    assert len(listed[0]["members"]) == 2

    # Renaming a member's account, and removing one.
    renamed = client.post(
        f"{url}/members",
        headers=world.headers("operator"),
        json={"user_id": str(bob), "mastodon_username": "bob_mod"},
    )
    assert sorted(m["mastodon_username"] for m in renamed.json()["members"]) == [
        "alice_mod",
        "bob_mod",
    ]
    removed = client.delete(f"{url}/members/{alice}", headers=world.headers("operator"))
    assert [m["mastodon_username"] for m in removed.json()["members"]] == ["bob_mod"]

    same_name = client.post(TEAMS, headers=world.headers("operator"), json={"name": "early birds"})
    assert same_name.status_code == 409
    assert same_name.json()["type"] == "urn:herd:problem:already-exists"

    assert client.delete(url, headers=world.headers("operator")).status_code == 204
    assert client.get(url, headers=world.headers("operator")).status_code == 404
    assert _actions(engine) == [
        "moderation.team_create",
        "moderation.member_add",
        "moderation.member_add",
        "moderation.team_update",
        "moderation.member_add",
        "moderation.member_remove",
        "moderation.team_delete",
    ]


BAD_TEAMS: list[dict[str, Any]] = [
    {"name": "T", "timezone": "Mars/Olympus_Mons"},
    {"name": "T", "coverage": [{"weekday": 8, "start": "08:00", "duration_minutes": 60}]},
    {"name": "T", "coverage": [{"weekday": 1, "start": "24:00", "duration_minutes": 60}]},
    {"name": "T", "coverage": [{"weekday": 1, "start": "08:00", "duration_minutes": 0}]},
    {"name": "T", "languages": ["english!"]},
    {"name": ""},
    {"name": "T", "colour": "red"},
]
BAD_USERNAMES = ["Alice", "a-b", "a" * 31, "", "bob@example.org"]


def test_bad_input_is_422_problem_json_and_nothing_is_stored(
    client: TestClient, world: World, engine: Engine
) -> None:
    ((staff, _),) = staff_users(engine, 1)
    team = make_team(client, world.headers("operator"), [])
    before = fingerprint(engine)
    headers = world.headers("operator")
    answers = [client.post(TEAMS, headers=headers, json=body) for body in BAD_TEAMS]
    answers += [
        client.put(f"{TEAMS}/{team['id']}", headers=headers, json=body) for body in BAD_TEAMS
    ]
    answers += [
        client.post(
            f"{TEAMS}/{team['id']}/members",
            headers=headers,
            json={"user_id": str(staff), "mastodon_username": name},
        )
        for name in BAD_USERNAMES
    ]
    # Not a staff user: the organisation's owner cannot be made a moderator.
    answers.append(
        client.post(
            f"{TEAMS}/{team['id']}/members",
            headers=headers,
            json={"user_id": str(world.ids["owner_user"]), "mastodon_username": "owner"},
        )
    )
    order_moderation(engine, world.ids["server"])
    before = fingerprint(engine)
    for body in (
        {"team_id": team["id"]},
        {"team_id": team["id"], "response_minutes": 30, "response_hours": 1},
        {"team_id": team["id"], "response_minutes": 0},
        {"team_id": str(uuid.uuid4()), "response_hours": 4},
    ):
        answers.append(
            client.put(
                f"/api/v1/servers/{world.ids['server']}/moderation", headers=headers, json=body
            )
        )
    for answer in answers:
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"] == PROBLEM_JSON
        assert answer.json()["type"] == "urn:herd:problem:invalid-input"
    assert fingerprint(engine) == before


def test_assigning_needs_the_add_on_and_staff(
    client: TestClient, world: World, engine: Engine
) -> None:
    team = make_team(client, world.headers("operator"), [])
    url = f"/api/v1/servers/{world.ids['server']}/moderation"
    body = {"team_id": team["id"], "response_hours": 4}
    refused = client.put(url, headers=world.headers("operator"), json=body)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM_JSON
    assert refused.json()["type"] == "urn:herd:problem:moderation-not-ordered"

    order_moderation(engine, world.ids["server"])
    before = fingerprint(engine)
    for who, status in (
        ("owner", 403),
        ("admin", 403),
        ("viewer", 403),
        ("outsider", 403),
        ("staff_without_scope", 403),
        ("anonymous", 401),
    ):
        answer = client.put(url, headers=world.headers(who), json=body)
        assert answer.status_code == status, (who, answer.text)
    # Teams are staff business too.
    assert client.post(TEAMS, headers=world.headers("owner"), json={"name": "X"}).status_code == 403
    assert client.get(TEAMS, headers=world.headers("owner")).status_code == 403
    # An outsider cannot even learn whether another organisation's server is staffed.
    assert client.get(url, headers=world.headers("outsider")).status_code == 404
    assert fingerprint(engine) == before

    assigned = client.put(url, headers=world.headers("operator"), json=body)
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["staffed"] is True
    assert assigned.json()["response_minutes"] == 240
    assert [str(j.id) for j in _jobs(engine, world.ids["server"])] == [assigned.json()["job_id"]]


def test_org_sees_the_team_but_no_secret_and_tokens_are_encrypted(
    client: TestClient, world: World, engine: Engine
) -> None:
    (alice, alice_mail), (bob, bob_mail) = staff_users(engine, 2)
    team = make_team(client, world.headers("operator"), [(alice, "alice"), (bob, "bob")])
    server_id = world.ids["server"]
    order_moderation(engine, server_id)
    url = f"/api/v1/servers/{server_id}/moderation"
    assigned = client.put(
        url, headers=world.headers("operator"), json={"team_id": team["id"], "response_minutes": 90}
    )
    assert assigned.status_code == 200, assigned.text
    assert _plan(engine, server_id) == {"added": ["alice", "bob"], "removed": []}
    rows = _access(engine, server_id)
    tokens = {name: secret_box().decrypt(row.token_encrypted or "") for name, row in rows.items()}
    assert {row.state for row in rows.values()} == {AccessState.pending}
    assert all(len(value) >= 43 for value in tokens.values())
    assert len(set(tokens.values())) == 2
    # Stored encrypted: no plaintext token anywhere in Herd's tables.
    stored = json.dumps(fingerprint(engine))
    assert not any(value in stored for value in tokens.values())
    # Pending tokens are not handed out: the server has not confirmed them.
    with Session(engine) as session:
        assert access.server_token(session, server_id) is None
        assert [s.id for s, _ in access.staffed_servers(session)] == [server_id]

    shown = client.get(url, headers=world.headers("viewer"))
    assert shown.status_code == 200, shown.text
    body = shown.json()
    assert body["staffed"] is True
    assert body["team"] == {
        "name": "Night owls",
        "languages": ["en", "de-AT"],
        "timezone": "Europe/Berlin",
        "coverage": COVERAGE,
    }
    assert body["response_minutes"] == 90
    assert [(m["mastodon_username"], m["state"]) for m in body["moderators"]] == [
        ("alice", "pending"),
        ("bob", "pending"),
    ]
    for secret in (*tokens.values(), alice_mail, bob_mail):
        assert secret not in shown.text

    assert _confirm_run(engine, server_id) == {"granted": ["alice", "bob"], "revoked": []}
    with Session(engine) as session:
        assert access.server_token(session, server_id, alice) == tokens["alice"]
        assert access.server_token(session, server_id, bob) == tokens["bob"]
        assert access.server_token(session, server_id) in tokens.values()
        assert access.server_token(session, server_id, world.ids["owner_user"]) is None
        job = _jobs(engine, server_id)[0]
        # Whatever the job's playbook prints, the tokens are masked.
        masked = redactor_for(session, job).text(f"token={tokens['alice']} {tokens['bob']}")
        assert tokens["alice"] not in masked
        assert tokens["bob"] not in masked
    assert _actions(engine)[-1] == "moderation.assign"


def test_removing_a_member_and_ending_the_add_on_take_access_away(
    client: TestClient, world: World, engine: Engine
) -> None:
    (alice, _), (bob, _) = staff_users(engine, 2)
    team = make_team(client, world.headers("operator"), [(alice, "alice"), (bob, "bob")])
    server_id = world.ids["server"]
    order_moderation(engine, server_id)
    url = f"/api/v1/servers/{server_id}/moderation"
    client.put(
        url, headers=world.headers("operator"), json={"team_id": team["id"], "response_hours": 2}
    )
    _plan(engine, server_id)
    _confirm_run(engine, server_id)

    # A member leaves: the team's servers get a job, which revokes them.
    left = client.delete(f"{TEAMS}/{team['id']}/members/{bob}", headers=world.headers("operator"))
    assert left.status_code == 200
    assert len(left.json()["jobs"]) == 1
    assert _plan(engine, server_id) == {"added": [], "removed": ["bob"]}
    assert _access(engine, server_id)["bob"].state == AccessState.revoking
    with Session(engine) as session:
        assert access.server_token(session, server_id, bob) is None
    assert _confirm_run(engine, server_id) == {"granted": ["alice"], "revoked": ["bob"]}
    gone = _access(engine, server_id)["bob"]
    assert (gone.state, gone.token_encrypted) == (AccessState.revoked, None)

    # The organisation cancels the add-on; billing ends the order.
    cancelled = client.delete(
        f"/api/v1/servers/{server_id}/addons/moderation", headers=world.headers("owner")
    )
    assert cancelled.status_code == 202, cancelled.text
    with Session(engine) as session:
        pending_before = {j.id for j in _jobs(engine, server_id) if j.state == JobState.pending}
    work.apply_addon(engine, uuid.UUID(cancelled.json()["id"]))
    with Session(engine) as session:
        assert session.get(Assignment, server_id) is None
        assert access.staffed_servers(session) == []
        entry = session.exec(
            select(AuditEntry).where(AuditEntry.action == "moderation.unassign")
        ).one()
        assert entry.actor_label == "billing"
        assert entry.details["reason"] == "the moderation add-on ended"
    assert {j.id for j in _jobs(engine, server_id) if j.state == JobState.pending} >= pending_before
    assert any(j.state == JobState.pending for j in _jobs(engine, server_id))
    assert _plan(engine, server_id) == {"added": [], "removed": ["alice"]}
    assert _confirm_run(engine, server_id) == {"granted": [], "revoked": ["alice"]}
    with engine.connect() as connection:
        left_tokens = connection.execute(
            text("SELECT count(*) FROM moderator_access WHERE token_encrypted IS NOT NULL")
        ).scalar()
    assert left_tokens == 0
    shown = client.get(url, headers=world.headers("owner")).json()
    assert (shown["staffed"], shown["team"], shown["moderators"]) == (False, None, [])


def test_the_moderators_job_on_a_server_not_placed_yet(
    client: TestClient, world: World, engine: Engine
) -> None:
    """The whole pipeline, as a worker runs it: without a host nothing is
    granted, and unassigning drops the tokens Herd generated."""
    from provisioning.pipeline import run_job
    from provisioning.registry import pipelines

    [(alice, _)] = staff_users(engine, 1)
    team = make_team(client, world.headers("operator"), [(alice, "alice")])
    server_id = world.ids["requested_server"]
    order_moderation(engine, server_id)
    url = f"/api/v1/servers/{server_id}/moderation"
    body = {"team_id": team["id"], "response_minutes": 45}
    assigned = client.put(url, headers=world.headers("staff_admin"), json=body).json()
    outcome = run_job(engine, uuid.UUID(assigned["job_id"]), pipelines(), redactor_for=redactor_for)
    assert outcome.state == JobState.succeeded, outcome.detail
    assert _access(engine, server_id)["alice"].state == AccessState.pending

    unassigned = client.delete(url, headers=world.headers("staff_admin"))
    assert unassigned.status_code == 200, unassigned.text
    outcome = run_job(
        engine, uuid.UUID(unassigned.json()["job_id"]), pipelines(), redactor_for=redactor_for
    )
    assert outcome.state == JobState.succeeded, outcome.detail
    row = _access(engine, server_id)["alice"]
    assert (row.state, row.token_encrypted) == (AccessState.revoked, None)
    assert _actions(engine)[-2:] == ["moderation.assign", "moderation.unassign"]


def _end_job(engine: Engine, job_id: uuid.UUID, state: JobState, at: datetime) -> None:
    """What the worker records when a job ends (the runner's own tests cover
    how it gets there)."""
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.state, job.finished_at = state, at
        job.error = "moderators.yml unreachable on h1" if state == JobState.failed else None
        session.add(job)
        session.commit()


def test_unsettled_access_gets_a_job_again_with_back_off(
    client: TestClient, world: World, engine: Engine
) -> None:
    """A failed `moderators` job is tried again by the periodic settle: 5
    minutes after it ended, then 10, doubling; never beside a job under way,
    never over a job staff cancelled, never for a server already settled."""
    (alice, _), (bob, _) = staff_users(engine, 2)
    team = make_team(client, world.headers("operator"), [(alice, "alice"), (bob, "bob")])
    server_id = world.ids["server"]
    order_moderation(engine, server_id)
    assigned = client.put(
        f"/api/v1/servers/{server_id}/moderation",
        headers=world.headers("operator"),
        json={"team_id": team["id"], "response_hours": 2},
    ).json()
    # The same staffing on a server never placed is left alone.
    order_moderation(engine, world.ids["requested_server"])
    client.put(
        f"/api/v1/servers/{world.ids['requested_server']}/moderation",
        headers=world.headers("operator"),
        json={"team_id": team["id"], "response_hours": 2},
    )
    schedule = celery_app.conf.beat_schedule["moderators"]
    assert schedule["task"] == moderation_tasks.SETTLE_TASK == "herd.moderation.settle_access"
    t0 = utcnow()

    def settle(minutes: float) -> sync.Settled:
        return sync.settle_all(engine, t0 + timedelta(minutes=minutes))

    def jobs_now() -> list[Job]:
        return sorted(_jobs(engine, server_id), key=lambda j: j.created_at)

    # The assignment's own job is under way: nothing more.
    assert settle(0) == sync.Settled(checked=1, started=[], waiting=1)
    first = uuid.UUID(assigned["job_id"])
    _plan(engine, server_id)  # its first step made the tokens
    _end_job(engine, first, JobState.failed, t0)
    assert {r.state for r in _access(engine, server_id).values()} == {AccessState.pending}

    assert settle(4.9).started == []
    assert settle(5).started == [server_id]
    second = jobs_now()[-1]
    assert second.params == {sync.SETTLE_PARAM: True}
    assert second.state == JobState.pending
    assert settle(6).started == []  # one job at a time
    _end_job(engine, second.id, JobState.failed, t0 + timedelta(minutes=6))
    assert settle(15.9).started == []  # two failures in a row: 10 minutes
    assert settle(16).started == [server_id]
    third = jobs_now()[-1]
    # The host is back: the run grants both, and the server is settled.
    assert _confirm_run(engine, server_id) == {"granted": ["alice", "bob"], "revoked": []}
    _end_job(engine, third.id, JobState.succeeded, t0 + timedelta(minutes=17))
    assert settle(120) == sync.Settled(checked=1, started=[], waiting=0)
    assert len(jobs_now()) == 3

    # Bob's account is deactivated: no change went through Herd's API, and
    # the next look takes his access away.
    with Session(engine) as session:
        user = session.get(User, bob)
        assert user is not None
        user.is_active = False
        session.add(user)
        session.commit()
    assert settle(121).started == [server_id]
    fourth = jobs_now()[-1]
    assert _plan(engine, server_id) == {"added": [], "removed": ["bob"]}
    _end_job(engine, fourth.id, JobState.cancelled, t0 + timedelta(minutes=122))
    # Staff cancelled it: not started again behind their back, however long.
    assert settle(24 * 60) == sync.Settled(checked=1, started=[], waiting=1)
    assert len(jobs_now()) == 4
