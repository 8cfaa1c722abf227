"""The branding editor, finishing an order (payment, add-ons, single
sign-on), the server page's maintenance window and SSO state, invoices."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.billing.models import (
    AddOn,
    AddOnOrder,
    BillingAccount,
    BillingSubscription,
    Invoice,
)
from controlplane.billing.settings import get_billing_settings
from controlplane.branding.models import ServerBranding
from controlplane.jobs.models import Job, JobState
from controlplane.rollouts.models import MaintenanceWindow
from tests.factories import World
from tests.web.helpers import csrf_of, sign_in

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + b"\x00" * 40
SVG = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'


@pytest.fixture
def billing_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HERD_STRIPE_API_KEY", "sk_test_portal")
    get_billing_settings.cache_clear()
    yield
    monkeypatch.delenv("HERD_STRIPE_API_KEY")
    get_billing_settings.cache_clear()


def _stored(herd_env: Path) -> list[Path]:
    folder = herd_env / "branding"
    return sorted(folder.iterdir()) if folder.exists() else []


def _brand_jobs(engine: Engine) -> list[Job]:
    with Session(engine) as session:
        return list(session.exec(select(Job).where(Job.kind == "brand")).all())


def _branding_form(**extra: str) -> dict[str, str]:
    return {
        "title": "Campus social",
        "description": "For the campus",
        "primary_color": "#123456",
        "accent_color": "",
        "background_color": "",
        "text_color": "",
        "custom_css": "",
        **extra,
    }


def test_the_branding_editor_saves_colours_and_a_logo(
    web: TestClient, world: World, engine: Engine, herd_env: Path
) -> None:
    sign_in(web, world.tokens["admin"])
    url = f"/servers/{world.ids['server']}/branding"
    page = web.get(url)
    assert page.status_code == 200
    assert 'id="brand-preview"' in page.text
    assert "--pv-primary: #6364ff" in page.text  # the default until one is chosen
    answer = web.post(
        url,
        data={**_branding_form(), "csrf_token": csrf_of(page)},
        files={"logo": ("logo.png", PNG, "image/png")},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    saved = web.get(answer.headers["location"])
    assert "Saved." in saved.text
    assert "--pv-primary: #123456" in saved.text
    assert "Campus social" in saved.text
    [job] = _brand_jobs(engine)
    assert f"/jobs/{job.id}" in saved.text
    logo_url = re.search(r'id="preview-logo" alt="" src="([^"]+)"', saved.text)
    assert logo_url
    image = web.get(logo_url.group(1).replace("&amp;", "&"))
    assert image.status_code == 200
    assert image.content == PNG
    assert image.headers["content-type"] == "image/png"
    assert image.headers["x-content-type-options"] == "nosniff"


def test_a_refused_upload_stores_nothing_and_says_why(
    web: TestClient, world: World, engine: Engine, herd_env: Path
) -> None:
    sign_in(web, world.tokens["owner"])
    url = f"/servers/{world.ids['server']}/branding"
    page = web.get(url)
    answer = web.post(
        url,
        data={**_branding_form(), "csrf_token": csrf_of(page)},
        files={
            "logo": ("logo.png", PNG, "image/png"),
            "background": ("bg.svg", SVG, "image/svg+xml"),
        },
    )
    assert answer.status_code == 422
    assert "images must be PNG, JPEG or WebP" in answer.text
    # Nothing of the form was kept: not the good logo, not the colours.
    assert _stored(herd_env) == []
    with Session(engine) as session:
        assert session.get(ServerBranding, world.ids["server"]) is None
    assert _brand_jobs(engine) == []
    # What was typed stays in the form.
    assert 'value="#123456"' in answer.text


def test_bad_css_is_refused_on_the_page(web: TestClient, world: World, engine: Engine) -> None:
    sign_in(web, world.tokens["owner"])
    url = f"/servers/{world.ids['server']}/branding"
    page = web.get(url)
    answer = web.post(
        url,
        data={
            **_branding_form(custom_css="@import url(https://elsewhere.example-herd.org/a.css);"),
            "csrf_token": csrf_of(page),
        },
    )
    assert answer.status_code == 422
    assert "cannot @import a stylesheet from another site" in answer.text
    with Session(engine) as session:
        assert session.get(ServerBranding, world.ids["server"]) is None


def test_a_viewer_sees_the_branding_but_cannot_change_it(
    web: TestClient, world: World, engine: Engine
) -> None:
    sign_in(web, world.tokens["viewer"])
    url = f"/servers/{world.ids['server']}/branding"
    page = web.get(url)
    assert page.status_code == 200
    assert "Save branding" not in page.text
    answer = web.post(url, data={**_branding_form(), "csrf_token": csrf_of(page)})
    assert answer.status_code == 403
    with Session(engine) as session:
        assert session.get(ServerBranding, world.ids["server"]) is None


def test_the_order_form_offers_add_ons_and_says_sso_is_unavailable(
    web: TestClient, world: World, engine: Engine
) -> None:
    with Session(engine) as session:
        session.add(AddOn(code="moderation", name="Moderation staffing", price_cents=9900))
        session.add(
            AddOn(
                code="support",
                name="Support contract",
                price_cents=120000,
                interval="year",
                per="organisation",
            )
        )
        session.commit()
    sign_in(web, world.tokens["owner"])
    form = web.get(f"/o/{world.ids['org']}/servers/new")
    assert "Moderation staffing" in form.text
    assert "Support contract" in form.text
    assert 'id="sso-unavailable"' in form.text
    answer = web.post(
        f"/o/{world.ids['org']}/servers",
        data={
            "domain": "extras.org-a-herd.social",
            "plan": "small",
            "title": "Extras",
            "registrations_mode": "approved",
            "addon": ["moderation", "support"],
            "csrf_token": csrf_of(form),
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303
    assert answer.headers["location"].endswith("/order?want=moderation")
    page = web.get(answer.headers["location"])
    # Billing is off here: the order waits for approval, and the support
    # contract could not be ordered, which the page says.
    assert 'id="payment-approval"' in page.text
    assert "Support contract not ordered: billing through Stripe is not switched on" in page.text
    assert "chosen when ordering" in page.text
    with Session(engine) as session:
        assert session.exec(select(AddOnOrder)).all() == []


def test_finishing_an_order_shows_the_checkout_or_the_invoice_terms(
    web: TestClient, world: World, engine: Engine, billing_on: None
) -> None:
    with Session(engine) as session:
        session.add(
            BillingSubscription(
                server_id=world.ids["server"],
                organisation_id=world.ids["org"],
                plan_id=world.ids["plan"],
                checkout_url="https://checkout.example-herd.org/c/pay_123",
            )
        )
        session.commit()
    sign_in(web, world.tokens["billing"])
    url = f"/servers/{world.ids['server']}/order"
    page = web.get(url)
    assert 'href="https://checkout.example-herd.org/c/pay_123"' in page.text
    with Session(engine) as session:
        session.add(
            BillingAccount(
                organisation_id=world.ids["org"],
                collection_method="send_invoice",
                days_until_due=14,
            )
        )
        session.commit()
    page = web.get(url)
    assert "due within 14 days, by bank transfer" in page.text
    assert "checkout.example-herd.org" not in page.text


def test_an_add_on_is_ordered_and_cancelled_from_the_page(
    web: TestClient, world: World, engine: Engine, billing_on: None
) -> None:
    with Session(engine) as session:
        session.add(
            AddOn(
                code="support",
                name="Support contract",
                price_cents=120000,
                interval="year",
                per="organisation",
                stripe_price_id="price_support",
            )
        )
        session.add(AddOn(code="moderation", name="Moderation staffing", price_cents=9900))
        session.commit()
    sign_in(web, world.tokens["owner"])
    page = web.get(f"/o/{world.ids['org']}/invoices")
    answer = web.post(
        f"/o/{world.ids['org']}/addons/support?next=/o/{world.ids['org']}/invoices",
        data={"csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 200
    assert "Ordered support." in answer.text
    with Session(engine) as session:
        [order] = session.exec(select(AddOnOrder)).all()
        assert order.status == "pending"
    # Moderation needs the server's subscription, which it does not have.
    answer = web.post(
        f"/servers/{world.ids['server']}/addons/moderation",
        data={"csrf_token": csrf_of(page)},
    )
    assert "Not done: the server has no live subscription" in answer.text
    answer = web.post(
        f"/o/{world.ids['org']}/addons/support/cancel?next=/o/{world.ids['org']}/invoices",
        data={"csrf_token": csrf_of(page)},
    )
    assert "Cancelled support." in answer.text


def test_a_viewer_cannot_order_add_ons(web: TestClient, world: World, engine: Engine) -> None:
    sign_in(web, world.tokens["viewer"])
    page = web.get(f"/servers/{world.ids['server']}")
    answer = web.post(f"/o/{world.ids['org']}/addons/support", data={"csrf_token": csrf_of(page)})
    assert answer.status_code == 403
    assert web.get(f"/o/{world.ids['org']}/invoices").status_code == 403


def test_the_invoices_page_lists_invoices_with_their_links(
    web: TestClient, world: World, engine: Engine
) -> None:
    with Session(engine) as session:
        session.add(
            Invoice(
                stripe_id="in_portal_1",
                organisation_id=world.ids["org"],
                number="HERD-0001",
                status="open",
                amount_due=4900,
                currency="eur",
                hosted_invoice_url="https://invoice.example-herd.org/i/1",
                created=datetime(2026, 11, 1, tzinfo=UTC),
            )
        )
        session.commit()
    sign_in(web, world.tokens["billing"])
    page = web.get(f"/o/{world.ids['org']}/invoices")
    assert page.status_code == 200
    assert "HERD-0001" in page.text
    assert "49.00 EUR" in page.text
    assert 'href="https://invoice.example-herd.org/i/1"' in page.text
    assert f'href="/o/{world.ids["org"]}/invoices"' in page.text  # in the navigation


def test_the_server_page_sets_a_maintenance_window_and_shows_sso(
    web: TestClient, world: World, engine: Engine
) -> None:
    sign_in(web, world.tokens["admin"])
    url = f"/servers/{world.ids['server']}"
    page = web.get(url)
    assert "not available on this Herd" in page.text  # SSO: no Keycloak here
    assert "No window: upgrades may start at any time." in page.text
    answer = web.post(
        f"{url}/maintenance-window",
        data={
            "weekday": "3",
            "start": "02:30",
            "duration_minutes": "90",
            "action": "set",
            "csrf_token": csrf_of(page),
        },
    )
    assert answer.status_code == 200
    assert "Wednesday 02:30 for 90 minutes" in answer.text
    with Session(engine) as session:
        [window] = session.exec(select(MaintenanceWindow)).all()
    assert (window.server_id, window.weekday, window.start_minute) == (
        world.ids["server"],
        3,
        150,
    )
    bad = web.post(
        f"{url}/maintenance-window",
        data={
            "weekday": "9",
            "start": "25:00",
            "duration_minutes": "x",
            "csrf_token": csrf_of(page),
        },
    )
    assert "Maintenance window not changed" in bad.text
    cleared = web.post(
        f"{url}/maintenance-window", data={"action": "clear", "csrf_token": csrf_of(page)}
    )
    assert "follows its organisation" in cleared.text
    with Session(engine) as session:
        assert session.exec(select(MaintenanceWindow)).all() == []


def test_the_branding_editor_removes_an_image(
    web: TestClient, world: World, engine: Engine, herd_env: Path
) -> None:
    sign_in(web, world.tokens["admin"])
    url = f"/servers/{world.ids['server']}/branding"
    page = web.get(url)
    assert "Remove the logo" not in page.text  # nothing to remove yet
    web.post(
        url,
        data={**_branding_form(), "csrf_token": csrf_of(page)},
        files={"logo": ("logo.png", PNG, "image/png")},
        follow_redirects=False,
    )
    page = web.get(url)
    assert 'id="logo-current"' in page.text
    assert 'form="remove-logo"' in page.text
    # The remove forms sit outside the editor's form, so Enter there saves.
    editor = page.text.split('id="branding-form"', 1)[1].split("</form>", 1)[0]
    assert 'id="remove-logo"' not in editor
    with Session(engine) as session:
        for job in session.exec(select(Job).where(Job.kind == "brand")).all():
            job.state = JobState.succeeded  # the brand job ran
            session.add(job)
        session.commit()

    # Without the CSRF token: refused, and the logo stays.
    refused = web.post(f"{url}/logo/remove", follow_redirects=False)
    assert refused.status_code == 403
    assert "Remove the logo" in web.get(url).text
    assert web.post(f"{url}/banner/remove", data={"csrf_token": csrf_of(page)}).status_code == 404

    answer = web.post(
        f"{url}/logo/remove", data={"csrf_token": csrf_of(page)}, follow_redirects=False
    )
    assert answer.status_code == 303
    page = web.get(answer.headers["location"])
    assert 'id="logo-current"' not in page.text
    assert "brand job</a> is applying it" in page.text
    with Session(engine) as session:
        row = session.get(ServerBranding, world.ids["server"])
        assert row is not None
        assert row.logo_sha256 is None
        assert len(session.exec(select(Job).where(Job.kind == "brand")).all()) == 2

    # A viewer sees no remove button, and a forged removal is refused.
    web.cookies.clear()
    sign_in(web, world.tokens["viewer"])
    page = web.get(url)
    assert "Remove the" not in page.text
    forged = web.post(f"{url}/background/remove", data={"csrf_token": csrf_of(page)})
    assert forged.status_code == 403
