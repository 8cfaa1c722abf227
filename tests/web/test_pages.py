"""Every page renders for the role it is for, with what that person came to
see; the live streams speak server-sent events."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.audit.models import AuditEntry
from controlplane.rollouts.models import Rollout
from controlplane.tenancy.models import Invitation
from tests.factories import World
from tests.web.helpers import csrf_of, sign_in


def test_staff_console_pages(web: TestClient, world: World) -> None:
    sign_in(web, world.tokens["operator"])
    fleet = web.get("/staff/fleet")
    assert fleet.status_code == 200
    for domain in ("live.org-a-herd.social", "paused.org-a-herd.social"):
        assert domain in fleet.text
    assert "Organisation" in fleet.text  # the organisation's name column
    filtered = web.get("/staff/fleet", params={"state": "suspended", "q": "paused"})
    assert "paused.org-a-herd.social" in filtered.text
    assert "live.org-a-herd.social" not in filtered.text
    first = web.get("/staff/fleet", params={"limit": 2})
    assert 'rel="next"' in first.text
    hosts = web.get("/staff/hosts")
    assert "h-empty" in hosts.text
    jobs = web.get("/staff/jobs", params={"state": "succeeded"})
    assert f"/jobs/{world.ids['finished_job']}" in jobs.text
    assert f"/jobs/{world.ids['job']}" not in jobs.text
    job = web.get(f"/jobs/{world.ids['finished_job']}")
    assert "Install" in job.text
    assert "data-live-job" not in job.text  # finished: nothing to follow
    assert web.get("/staff/rollouts").status_code == 200
    assert web.get("/staff/audit").status_code == 200


def test_a_job_stream_sends_its_events_then_ends(web: TestClient, world: World) -> None:
    sign_in(web, world.tokens["owner"])
    with web.stream("GET", f"/jobs/{world.ids['finished_job']}/live") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        body = "".join(stream.iter_text())
    assert "event: task" in body
    assert '"task": "Install"' in body
    assert body.rstrip().endswith('data: {"state": "succeeded"}')


def test_a_job_of_another_organisation_looks_missing(web: TestClient, world: World) -> None:
    sign_in(web, world.tokens["outsider"])
    assert web.get(f"/jobs/{world.ids['finished_job']}").status_code == 404
    assert web.get(f"/jobs/{world.ids['finished_job']}/live").status_code == 404


def test_an_admin_invites_someone_and_sees_the_token_once(
    web: TestClient, world: World, engine: Engine
) -> None:
    sign_in(web, world.tokens["admin"])
    page = web.get(f"/o/{world.ids['org']}/members")
    assert "viewer@org-a.example-herd.org" in page.text
    answer = web.post(
        f"/o/{world.ids['org']}/invitations",
        data={"email": "new@org-a.example-herd.org", "role": "viewer", "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 200
    assert 'id="invitation-token"' in answer.text
    assert 'id="invitation-token"' not in web.get(f"/o/{world.ids['org']}/members").text
    with Session(engine) as session:
        emails = session.exec(select(Invitation.email)).all()
    assert "new@org-a.example-herd.org" in emails


def test_a_viewer_sees_members_but_cannot_manage_them(web: TestClient, world: World) -> None:
    sign_in(web, world.tokens["viewer"])
    page = web.get(f"/o/{world.ids['org']}/members")
    assert page.status_code == 200
    assert "Invite someone" not in page.text
    answer = web.post(
        f"/o/{world.ids['org']}/invitations",
        data={"email": "x@org-a.example-herd.org", "role": "viewer", "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 403
    assert web.get(f"/o/{world.ids['org']}/audit").status_code == 403


def test_the_audit_log_shows_what_the_pages_did(
    web: TestClient, world: World, engine: Engine
) -> None:
    sign_in(web, world.tokens["owner"])
    page = web.get("/tokens")
    web.post(
        "/tokens",
        data={
            "name": "deploy",
            "scopes": ["read"],
            "expires_in_days": "5",
            "csrf_token": csrf_of(page),
        },
    )
    with Session(engine) as session:
        entry = session.exec(select(AuditEntry).where(AuditEntry.action == "token.create")).one()
    assert entry.actor_label == "owner@org-a.example-herd.org"


def test_the_organisation_switcher_lists_each_organisation(
    web: TestClient, world: World, engine: Engine
) -> None:
    from controlplane.auth.roles import OrgRole
    from controlplane.tenancy.models import Membership, User

    with Session(engine) as session:
        owner = session.exec(select(User).where(User.email == "owner@org-a.example-herd.org")).one()
        session.add(
            Membership(organisation_id=world.ids["org_b"], user_id=owner.id, role=OrgRole.viewer)
        )
        session.commit()
    sign_in(web, world.tokens["owner"])
    page = web.get(f"/o/{world.ids['org']}/servers")
    assert 'id="org-switch"' in page.text
    switched = web.get("/switch", params={"org": str(world.ids["org_b"])}, follow_redirects=False)
    assert switched.headers["location"] == f"/o/{world.ids['org_b']}/servers"
    assert web.get(switched.headers["location"]).status_code == 200


def test_a_bad_rollout_form_is_shown_back_and_starts_nothing(
    web: TestClient, world: World, engine: Engine
) -> None:
    sign_in(web, world.tokens["operator"])
    token = csrf_of(web.get("/staff/rollouts/new"))
    sent = {
        "csrf_token": token,
        "target": "v9.9.9",
        "selector": "series",
        "selector_value": "4.5",
        "waves": "1, 250%",
        "concurrency": "5",
        "failure_budget": "2",
    }
    for path in ("/staff/rollouts/preview", "/staff/rollouts"):
        page = web.post(path, data=sent, follow_redirects=False)
        assert page.status_code == 422, path
        assert 'role="alert"' in page.text
        assert "waves" in page.text.split('role="alert"', 1)[1].split("</p>", 1)[0]
        # What was typed is kept, to be corrected rather than retyped.
        assert 'value="1, 250%"' in page.text
        assert 'value="4.5"' in page.text
        assert 'value="2"' in page.text
    too_long = web.post("/staff/rollouts", data=sent | {"waves": "1," * 10_001})
    assert too_long.status_code == 422
    with Session(engine) as session:
        assert session.exec(select(Rollout)).all() == []
