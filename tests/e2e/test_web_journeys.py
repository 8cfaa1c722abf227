"""The web issue's two journeys that need real hosts, in Debian's chromium
against the whole stack (API and workers as processes, a test host over
SSH): an organisation orders a server and watches it go live; a staff
member rolls a release out to it and watches the rollout complete.

Nothing here is faked: the server page follows the real provisioning job's
Ansible tasks as they arrive, and the rollout page the real upgrade.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

from tests.e2e.stack import Stack
from tests.web.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Console

pytestmark = [
    pytest.mark.hosts,
    pytest.mark.slow,
    pytest.mark.postgres,
    pytest.mark.parametrize("db_kind", ["postgresql"]),
]
# Provisioning and an upgrade on a busy machine: minutes, not seconds.
SLOW = 600_000


@pytest.fixture
def web_stack(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Stack:
    # Plain http on 127.0.0.1: the session cookie cannot be Secure here.
    monkeypatch.setenv("HERD_WEB_COOKIE_SECURE", "false")
    return request.getfixturevalue("stack")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Person:
    """One person's browser: their own cookies, console and screenshots."""

    def __init__(self, browser: Browser, base: str, shots: Path, name: str) -> None:
        self.context: BrowserContext = browser.new_context(base_url=base)
        self.page: Page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.console = Console()
        self.page.on("console", self.console.on_console)
        self.page.on("pageerror", lambda error: self.console.errors.append(f"uncaught: {error}"))
        self.shots, self.name, self.count = shots, name, 0

    def shot(self, what: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.shots / f"{self.name}-{self.count:02d}-{what}.png"))

    def sign_in(self, token: str) -> None:
        self.page.goto("/sign-in")
        self.page.get_by_label("API token").fill(token)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url(re.compile(r"^(?!.*/sign-in).*$"))


def test_order_watch_it_go_live_then_roll_a_release_out(
    db_kind: str, web_stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    stack = web_stack
    stack.register_hosts()
    stack.start_worker().wait_ready()
    shots = tmp_path / "screenshots"
    shots.mkdir()
    owner = Person(browser, stack.api, shots, "owner")
    staff = Person(browser, stack.api, shots, "staff")

    # The organisation orders.
    owner.sign_in(stack.world.tokens["owner"])
    page = owner.page
    page.get_by_role("link", name="Order a server").click()
    page.get_by_label("Domain", exact=True).fill("town.city-herd.social")
    expect(page.locator("#domain-status")).to_have_text("town.city-herd.social is available")
    page.get_by_label("Site title").fill("Town")
    owner.shot("order")
    page.get_by_role("button", name="Order").click()
    page.wait_for_url(re.compile(r"/servers/[0-9a-f-]{36}/order$"))
    server_id = page.url.rsplit("/", 2)[1]
    page.goto(f"/servers/{server_id}")
    expect(page.locator("#server-state")).to_contain_text("requested")
    owner.shot("requested")

    # Staff approve it from the server's page in the console.
    staff.sign_in(stack.world.tokens["operator"])
    staff.page.goto(f"/servers/{server_id}")
    staff.page.get_by_role("button", name="Approve").click()
    expect(staff.page.locator("#server-state")).to_contain_text("provisioning")
    staff.shot("approved")

    # The owner's page follows the real job: tasks arrive over the event
    # stream, then the server is active on the version Herd installs.
    expect(page.locator("#log-rows tr").first).to_be_visible(timeout=SLOW)
    owner.shot("provisioning-live-log")
    expect(page.locator("#server-state")).to_contain_text("active", timeout=SLOW)
    expect(page.locator("#server-version")).to_have_text("4.5.1")
    expect(page.locator(".timeline")).to_contain_text("provisioned")
    owner.shot("active")
    assert stack.server(server_id)["state"] == "active"

    # A security release goes out to it through the console.
    stack.ok("operator", "POST", "/releases", json={"tag": "v4.5.2", "security": True})
    staff.page.goto("/staff/rollouts/new")
    staff.page.get_by_label("Release").select_option("v4.5.2")
    staff.page.get_by_label("Waves", exact=True).fill("100%")
    staff.page.get_by_label("Soak between waves (seconds)").fill("0")
    staff.page.get_by_role("button", name="Preview waves").click()
    expect(staff.page.locator("#preview")).to_contain_text("town.city-herd.social")
    staff.shot("rollout-preview")
    staff.page.get_by_role("button", name="Start rollout").click()
    staff.page.wait_for_url(re.compile(r"/staff/rollouts/[0-9a-f-]{36}$"))
    expect(staff.page.locator("#rollout-state")).to_have_text("running")
    staff.shot("rollout-running")
    target = staff.page.locator(f'tr[data-target="{server_id}"] [data-field="state"]')
    expect(target).to_have_text("succeeded", timeout=SLOW)
    expect(staff.page.locator("#rollout-state")).to_have_text("completed", timeout=SLOW)
    staff.shot("rollout-completed")
    assert stack.server(server_id)["version"] == "4.5.2"
    # The owner's page follows the server live and shows itself anew when
    # the version changes (web/static/herd.js); a reload from here raced
    # that one and was aborted.
    expect(page.locator("#server-version")).to_have_text("4.5.2", timeout=SLOW)
    owner.shot("upgraded")

    for person in (owner, staff):
        person.context.close()
        assert person.console.unexpected() == [], (person.name, person.console.unexpected())
