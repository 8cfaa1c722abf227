"""What people do in the portal and the console, in a real browser."""

from __future__ import annotations

import re
import uuid

from playwright.sync_api import expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.jobs.models import Job, JobEvent, JobState
from controlplane.rollouts.models import CatalogueRelease, ReleaseSeries, RolloutTarget
from controlplane.servers.lifecycle import Actor, ServerState
from controlplane.servers.models import Server
from controlplane.servers.service import apply_event
from tests import factories
from tests.factories import World
from tests.web.browser.conftest import Journey, sign_in


def test_an_owner_orders_a_server_and_watches_it_provision(
    journey: Journey, world: World, engine: Engine
) -> None:
    page = journey.page
    sign_in(journey, world.tokens["owner"])
    expect(page.get_by_role("heading", name="Servers of Organisation")).to_be_visible()
    page.get_by_role("link", name="Order a server").click()

    domain = page.get_by_label("Domain", exact=True)
    domain.fill("live.org-a-herd.social")
    expect(page.locator("#domain-status")).to_contain_text("already been ordered")
    domain.fill("https://bad")
    expect(page.locator("#domain-status")).to_contain_text("without scheme")
    domain.fill("Town-Hall.org-a-herd.social")
    expect(page.locator("#domain-status")).to_have_text("town-hall.org-a-herd.social is available")
    page.get_by_label("Site title").fill("Town hall")
    journey.shot("order-form")
    page.get_by_role("button", name="Order").click()

    # The order's last step: payment (none here: billing is off) and add-ons.
    page.wait_for_url(re.compile(r"/servers/[0-9a-f-]{36}/order$"))
    expect(page.locator("#order-state")).to_contain_text("requested")
    expect(page.locator("#payment-approval")).to_be_visible()
    journey.shot("order-finish")
    page.get_by_role("link", name="Server page").click()
    page.wait_for_url(re.compile(r"/servers/[0-9a-f-]{36}$"))
    expect(page.locator("#server-state")).to_contain_text("requested")
    journey.shot("ordered")
    server_id = uuid.UUID(page.url.rsplit("/", 1)[1])

    # The workers' part, faked: staff approve, a provisioning job runs and
    # records its Ansible tasks as it goes.
    with Session(engine, expire_on_commit=False) as session:
        server = session.exec(select(Server).where(Server.id == server_id)).one()
        apply_event(session, server, "approve", Actor.staff, "ops@provider.example-herd.org")
        job = Job(kind="provision", server_id=server.id, state=JobState.running)
        session.add(job)
        session.commit()
    expect(page.locator("#server-state")).to_contain_text("provisioning")
    expect(page.locator("#job-state")).to_have_text("running")

    # From here the page must not reload: rows arrive over the event stream.
    page.evaluate("window.herdMarker = 'same page'")
    for task in ("Install system packages", "Check out Mastodon", "Precompile assets"):
        with Session(engine) as session:
            session.add(
                JobEvent(job_id=job.id, step="run_provision", host="h1", task=task, status="ok")
            )
            session.commit()
        expect(page.locator("#log-rows")).to_contain_text(task)
    assert page.evaluate("window.herdMarker") == "same page"
    journey.shot("provisioning-live-log")

    with Session(engine, expire_on_commit=False) as session:
        server = session.exec(select(Server).where(Server.id == server_id)).one()
        stored = session.get(Job, job.id)
        stored.state = JobState.succeeded
        server.version = "v4.5.2"
        session.add_all([stored, server])
        apply_event(session, server, "provisioned", Actor.system, "herd")
        session.commit()
    expect(page.locator("#server-state")).to_contain_text("active")
    expect(page.locator("#server-version")).to_have_text("v4.5.2")
    expect(page.locator(".timeline")).to_contain_text("provisioned")
    expect(page.locator("#log-rows tr")).to_have_count(3)
    journey.shot("active")

    # The same pages on a phone: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    journey.shot("server-on-a-phone")


def _fleet_on(engine: Engine, version: str, count: int) -> None:
    with Session(engine) as session:
        org = factories.organisation(session, "rollout-org")
        plan = session.exec(select(factories.Plan).where(factories.Plan.code == "small")).one()
        for n in range(count):
            server = factories.server(
                session, org, plan, ServerState.active, f"r{n}.rollout-herd.social"
            )
            server.version = version
            session.add(server)
        session.add(ReleaseSeries(series="4.5"))
        session.add(CatalogueRelease(tag="v4.5.3", series="4.5", security=True))
        session.commit()


def test_staff_preview_start_and_pause_a_rollout(
    journey: Journey, world: World, engine: Engine
) -> None:
    _fleet_on(engine, "v4.5.2", 3)
    page = journey.page
    sign_in(journey, world.tokens["staff_admin"])
    page.goto("/staff/rollouts")
    page.get_by_role("link", name="New rollout").click()
    page.get_by_label("Release").select_option("v4.5.3")
    page.get_by_label("Running these series").check()
    page.get_by_label("Series, plans or organisations").fill("4.5")
    page.get_by_label("Waves", exact=True).fill("1, 100%")
    page.get_by_role("button", name="Preview waves").click()

    preview = page.locator("#preview")
    expect(preview).to_contain_text("Preview: 3 servers to v4.5.3 in 2 waves")
    expect(preview).to_contain_text("r0.rollout-herd.social")
    journey.shot("rollout-preview")
    page.get_by_role("button", name="Start rollout").click()

    page.wait_for_url(re.compile(r"/staff/rollouts/[0-9a-f-]{36}$"))
    expect(page.locator("#rollout-state")).to_have_text("running")
    rollout_id = uuid.UUID(page.url.rsplit("/", 1)[1])
    expect(page.locator('#waves tr[data-wave="0"] [data-count="pending"]')).to_have_text("1")
    journey.shot("rollout-started")

    # The engine's part, faked: the canary starts; the page follows live.
    with Session(engine) as session:
        canary = session.exec(
            select(RolloutTarget).where(
                RolloutTarget.rollout_id == rollout_id, RolloutTarget.wave == 0
            )
        ).one()
        canary.state = "running"
        session.add(canary)
        session.commit()
        canary_id = str(canary.server_id)
    expect(page.locator('#waves tr[data-wave="0"] [data-count="running"]')).to_have_text("1")
    expect(page.locator(f'tr[data-target="{canary_id}"] [data-field="state"]')).to_have_text(
        "running"
    )
    journey.shot("rollout-canary-running")

    page.get_by_role("button", name="Pause").click()
    expect(page.locator("#rollout-state")).to_have_text("paused")
    expect(page.locator("#rollout-reason")).to_contain_text("paused by admin@provider")
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    journey.shot("rollout-paused")


def test_a_viewer_cannot_reach_staff_pages_or_forge_a_form(
    journey: Journey, world: World, engine: Engine
) -> None:
    page = journey.page
    sign_in(journey, world.tokens["viewer"])
    expect(page.get_by_role("heading", name="Servers of Organisation")).to_be_visible()
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Fleet")).to_have_count(0)
    expect(page.get_by_role("link", name="Order a server")).to_have_count(0)
    journey.shot("viewer-servers")

    # Refusals provoked on purpose: the browser logs each refused load.
    journey.console.expect(r"status of 403")
    for path in ("/staff/fleet", "/staff/rollouts/new"):
        answer = page.goto(path)
        assert answer is not None
        assert answer.status == 403
        expect(page.locator(".error")).to_contain_text("staff role")
    journey.shot("viewer-refused")

    # A form posted from elsewhere carries the session cookie (SameSite=Lax
    # still sends it on some navigations) but not the session's CSRF token.
    forged = page.request.post(
        f"/o/{world.ids['org']}/servers",
        form={"domain": "forged.org-a-herd.social", "plan": "small", "title": "Forged"},
        max_redirects=0,
    )
    assert forged.status == 403
    assert "Form expired" in forged.text()
    with Session(engine) as session:
        domains = session.exec(select(Server.domain)).all()
    assert "forged.org-a-herd.social" not in domains
