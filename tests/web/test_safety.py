"""The portal's safety without a browser: cookie flags, CSRF on every POST,
and the same refusals as the API for roles that may not act."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.servers.models import Server
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow
from controlplane.tokens.models import ApiToken
from tests.factories import World
from tests.web.helpers import csrf_of, sign_in

ORDER = {
    "domain": "fresh.org-a-herd.social",
    "plan": "small",
    "title": "Fresh",
    "registrations_mode": "approved",
}


def _servers(engine: Engine) -> set[str]:
    with Session(engine) as session:
        return set(session.exec(select(Server.domain)).all())


def test_session_cookie_is_secure_httponly_and_samesite(
    herd_env: Path, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from controlplane.app import create_app

    monkeypatch.delenv("HERD_WEB_COOKIE_SECURE", raising=False)
    get_settings.cache_clear()
    with TestClient(create_app(), base_url="https://testserver") as client:
        answer = sign_in(client, world.tokens["owner"])
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("herd_session=")
    assert "; secure" in cookie
    assert "; httponly" in cookie
    assert "samesite=lax" in cookie


def test_cookie_is_not_secure_only_when_the_setting_says_so(web: TestClient, world: World) -> None:
    cookie = sign_in(web, world.tokens["owner"]).headers["set-cookie"].lower()
    assert "; secure" not in cookie
    assert "; httponly" in cookie


def test_anonymous_visitor_is_sent_to_sign_in(web: TestClient, world: World) -> None:
    answer = web.get(f"/o/{world.ids['org']}/servers", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/sign-in?next=/o/")


def test_a_bad_token_does_not_sign_in(web: TestClient, world: World) -> None:
    page = web.get("/sign-in")
    answer = web.post(
        "/sign-in/token",
        data={"token": world.tokens["revoked"], "csrf_token": csrf_of(page)},
    )
    assert answer.status_code == 401
    assert "revoked" in answer.text
    assert web.get("/staff/fleet", follow_redirects=False).status_code == 303


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    web: TestClient, world: World, engine: Engine
) -> None:
    sign_in(web, world.tokens["owner"])
    before = _servers(engine)
    url = f"/o/{world.ids['org']}/servers"
    missing = web.post(url, data=ORDER, follow_redirects=False)
    forged = web.post(url, data={**ORDER, "csrf_token": "forged"}, follow_redirects=False)
    assert missing.status_code == 403
    assert forged.status_code == 403
    assert "Form expired" in missing.text
    assert _servers(engine) == before


def test_a_csrf_token_from_another_session_is_refused(
    web: TestClient, world: World, engine: Engine, herd_env: Path
) -> None:
    from controlplane.app import create_app

    with TestClient(create_app()) as attacker:
        sign_in(attacker, world.tokens["outsider"])
        stolen = csrf_of(attacker.get("/tokens"))
    sign_in(web, world.tokens["owner"])
    answer = web.post(f"/o/{world.ids['org']}/servers", data={**ORDER, "csrf_token": stolen})
    assert answer.status_code == 403
    assert "fresh.org-a-herd.social" not in _servers(engine)


def test_signing_in_replaces_the_csrf_token(web: TestClient, world: World) -> None:
    before = csrf_of(web.get("/sign-in"))
    sign_in(web, world.tokens["owner"])
    assert csrf_of(web.get("/tokens")) != before


def test_an_owner_orders_a_server_through_the_form(
    web: TestClient, world: World, engine: Engine
) -> None:
    sign_in(web, world.tokens["owner"])
    form = web.get(f"/o/{world.ids['org']}/servers/new")
    answer = web.post(
        f"/o/{world.ids['org']}/servers",
        data={**ORDER, "csrf_token": csrf_of(form)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    page = web.get(answer.headers["location"])
    assert "fresh.org-a-herd.social" in page.text
    assert "requested" in page.text
    assert "fresh.org-a-herd.social" in _servers(engine)


def test_the_order_form_shows_the_apis_own_refusals(web: TestClient, world: World) -> None:
    sign_in(web, world.tokens["owner"])
    csrf = csrf_of(web.get("/tokens"))
    url = f"/o/{world.ids['org']}/servers"
    reserved = web.post(url, data={**ORDER, "domain": "social.example", "csrf_token": csrf})
    taken = web.post(url, data={**ORDER, "domain": "live.org-a-herd.social", "csrf_token": csrf})
    assert reserved.status_code == 422
    assert "reserved" in reserved.text
    assert taken.status_code == 409
    assert "already been ordered" in taken.text


def test_the_domain_check_uses_the_orders_validation(web: TestClient, world: World) -> None:
    sign_in(web, world.tokens["owner"])
    url = f"/o/{world.ids['org']}/servers/check-domain"
    free = web.get(url, params={"domain": "Brand-New.org-a-herd.social"}).json()
    taken = web.get(url, params={"domain": "live.org-a-herd.social"}).json()
    bad = web.get(url, params={"domain": "https://x.social/"}).json()
    assert free == {
        "ok": True,
        "message": "brand-new.org-a-herd.social is available",
        "domain": "brand-new.org-a-herd.social",
    }
    assert taken["ok"] is False
    assert "already been ordered" in taken["message"]
    assert bad["ok"] is False
    assert "without scheme" in bad["message"]


@pytest.mark.parametrize("principal", ["viewer", "billing"])
def test_a_role_that_may_not_order_is_refused_by_the_server(
    web: TestClient, world: World, engine: Engine, principal: str
) -> None:
    sign_in(web, world.tokens[principal])
    servers_page = web.get(f"/o/{world.ids['org']}/servers")
    assert "Order a server" not in servers_page.text
    answer = web.post(
        f"/o/{world.ids['org']}/servers", data={**ORDER, "csrf_token": csrf_of(servers_page)}
    )
    assert answer.status_code == 403
    assert "fresh.org-a-herd.social" not in _servers(engine)
    assert web.get(f"/o/{world.ids['org']}/servers/new").status_code == 403


@pytest.mark.parametrize(
    "path",
    ["/staff/fleet", "/staff/hosts", "/staff/rollouts", "/staff/rollouts/new", "/staff/jobs"],
)
@pytest.mark.parametrize("principal", ["viewer", "owner", "staff_without_scope"])
def test_staff_pages_refuse_everyone_else(
    web: TestClient, world: World, path: str, principal: str
) -> None:
    sign_in(web, world.tokens[principal])
    answer = web.get(path)
    assert answer.status_code == 403
    assert "staff role" in answer.text


def test_staff_actions_refuse_a_customer(web: TestClient, world: World, engine: Engine) -> None:
    sign_in(web, world.tokens["owner"])
    csrf = csrf_of(web.get("/tokens"))
    server_id = world.ids["server"]
    answer = web.post(
        f"/servers/{server_id}/staff/suspend", data={"reason": "because", "csrf_token": csrf}
    )
    assert answer.status_code == 403
    with Session(engine) as session:
        assert session.get(Server, server_id).state == "active"


def test_another_organisations_server_looks_missing(web: TestClient, world: World) -> None:
    sign_in(web, world.tokens["outsider"])
    assert web.get(f"/servers/{world.ids['server']}").status_code == 404
    assert web.get(f"/o/{world.ids['org']}/servers").status_code == 404
    assert web.get(f"/servers/{world.ids['server']}/live").status_code == 404


def test_revoking_the_token_ends_the_session(web: TestClient, world: World, engine: Engine) -> None:
    sign_in(web, world.tokens["owner"])
    assert web.get(f"/o/{world.ids['org']}/servers").status_code == 200
    with Session(engine) as session:
        for token in session.exec(select(ApiToken)).all():
            token.revoked_at = utcnow()
            session.add(token)
        session.commit()
    assert web.get(f"/o/{world.ids['org']}/servers", follow_redirects=False).status_code == 303


def test_an_operator_suspends_a_server_with_a_reason(
    web: TestClient, world: World, engine: Engine
) -> None:
    sign_in(web, world.tokens["operator"])
    server_id = world.ids["server"]
    page = web.get(f"/servers/{server_id}")
    assert "Staff actions" in page.text
    url = f"/servers/{server_id}/staff/suspend"
    no_reason = web.post(url, data={"reason": "", "csrf_token": csrf_of(page)})
    assert no_reason.status_code == 422
    done = web.post(url, data={"reason": "abuse report 42", "csrf_token": csrf_of(page)})
    assert done.status_code == 200
    assert "abuse report 42" in done.text
    with Session(engine) as session:
        assert session.get(Server, server_id).state == "suspended"


def test_a_token_is_shown_once(web: TestClient, world: World) -> None:
    sign_in(web, world.tokens["owner"])
    page = web.get("/tokens")
    created = web.post(
        "/tokens",
        data={
            "name": "ci",
            "scopes": ["read"],
            "expires_in_days": "7",
            "csrf_token": csrf_of(page),
        },
    )
    assert created.status_code == 200
    assert 'id="new-token"' in created.text
    again = web.get("/tokens")
    assert "ci" in again.text
    assert 'id="new-token"' not in again.text
