"""Branding in a real browser: the preview follows the form as it is
filled in, a file that is not an image is caught, and saving starts the
brand job."""

from __future__ import annotations

import re
import struct
import zlib
from pathlib import Path

from playwright.sync_api import expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.branding.models import ServerBranding
from controlplane.jobs.models import Job
from tests.factories import World
from tests.web.browser.conftest import Journey, sign_in


def _png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A real PNG of one colour, so the browser can draw it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def test_an_admin_brands_a_server_and_sees_the_preview(
    journey: Journey, world: World, engine: Engine, tmp_path: Path
) -> None:
    page = journey.page
    sign_in(journey, world.tokens["admin"])
    page.goto(f"/servers/{world.ids['server']}")
    page.get_by_role("link", name="Branding").click()
    page.wait_for_url(re.compile(r"/branding$"))
    button = page.locator("#preview-button")
    expect(button).to_have_css("background-color", "rgb(99, 100, 255)")  # the default

    page.get_by_label("Primary colour", exact=True).fill("#aa3300")
    expect(button).to_have_css("background-color", "rgb(170, 51, 0)")
    page.get_by_label("Background colour", exact=True).fill("#101820")
    page.get_by_label("Text colour", exact=True).fill("#f0f0f0")
    expect(page.locator("#brand-preview")).to_have_css("color", "rgb(240, 240, 240)")
    # Half a colour is marked, and the preview keeps the default meanwhile.
    accent = page.get_by_label("Accent colour", exact=True)
    accent.fill("#12")
    expect(accent).to_have_attribute("aria-invalid", "true")
    accent.fill("#2a9d8f")
    expect(page.locator(".mock-link")).to_have_css("color", "rgb(42, 157, 143)")
    page.get_by_label("Site title").fill("Harbour town")
    expect(page.locator("#preview-title")).to_have_text("Harbour town")

    # A file that is not an image is caught before upload.
    svg = tmp_path / "logo.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    page.get_by_label("Logo").set_input_files(str(svg))
    expect(page.locator("#logo-status")).to_have_text("Choose a PNG, JPEG or WebP image.")
    logo = tmp_path / "logo.png"
    logo.write_bytes(_png(24, 24, (200, 40, 40)))
    page.get_by_label("Logo").set_input_files(str(logo))
    expect(page.locator("#logo-status")).to_have_text("")
    expect(page.locator("#preview-logo")).to_be_visible()
    assert page.evaluate("document.getElementById('preview-logo').naturalWidth") == 24
    journey.shot("branding-preview")

    page.get_by_role("button", name="Save branding").click()
    page.wait_for_url(re.compile(r"/branding\?saved=1$"))
    expect(page.get_by_role("status")).to_contain_text("Saved.")
    expect(button).to_have_css("background-color", "rgb(170, 51, 0)")
    expect(page.locator("#preview-logo")).to_be_visible()
    journey.shot("branding-saved")

    with Session(engine) as session:
        [job] = session.exec(select(Job).where(Job.kind == "brand")).all()
        row = session.get(ServerBranding, world.ids["server"])
    assert row is not None
    assert (row.primary_color, row.logo_type) == ("#aa3300", "image/png")
    page.get_by_role("link", name="brand job").click()
    page.wait_for_url(re.compile(f"/jobs/{job.id}$"))
    journey.shot("brand-job")

    # The logo removed: the preview has none, and there is nothing left to remove.
    page.goto(f"/servers/{world.ids['server']}/branding")
    page.get_by_role("button", name="Remove the logo").click()
    page.wait_for_url(re.compile(r"/branding\?saved=1$"))
    expect(page.locator("#preview-logo")).to_be_hidden()
    expect(page.get_by_role("button", name="Remove the logo")).to_have_count(0)
    with Session(engine) as session:
        row = session.get(ServerBranding, world.ids["server"])
    assert row is not None
    assert row.logo_sha256 is None
    journey.shot("branding-logo-removed")
