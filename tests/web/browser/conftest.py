"""Browser journeys: Playwright driving Debian's chromium, headless, against
Herd in a real uvicorn process.

They run on SQLite only: the pages call the services whose database
behaviour the rest of the suite checks on both databases, and a browser
journey costs seconds."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.processes import api_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture
def db_kind() -> str:
    return "sqlite"


@pytest.fixture
def portal(web_env: Path) -> Iterator[str]:
    with api_process() as base:
        yield base


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Console:
    """Every console error and uncaught exception of a page; a journey fails
    on any it did not announce (a refusal it provokes on purpose)."""

    errors: list[str] = field(default_factory=list)
    expected: list[re.Pattern[str]] = field(default_factory=list)

    def expect(self, pattern: str) -> None:
        self.expected.append(re.compile(pattern))

    def on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(message.text)

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in self.expected)]


@dataclass
class Journey:
    page: Page
    console: Console
    shots: Path
    base: str
    count: int = 0

    def shot(self, name: str) -> Path:
        self.count += 1
        path = self.shots / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def journey(browser: Browser, portal: str, tmp_path: Path) -> Iterator[Journey]:
    context = browser.new_context(base_url=portal)
    page = context.new_page()
    page.set_default_timeout(15_000)
    console = Console()
    page.on("console", console.on_console)
    page.on("pageerror", lambda error: console.errors.append(f"uncaught: {error}"))
    shots = tmp_path / "screenshots"
    shots.mkdir()
    run = Journey(page, console, shots, portal)
    yield run
    context.close()
    assert list(shots.glob("*.png")), "the journey saved no screenshot"
    assert console.unexpected() == [], f"browser console errors: {console.unexpected()}"


def sign_in(journey: Journey, token: str) -> None:
    page = journey.page
    page.goto("/sign-in")
    page.get_by_label("API token").fill(token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"^(?!.*/sign-in).*$"))
