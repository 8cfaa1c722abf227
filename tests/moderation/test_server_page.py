"""The organisation's server page says whether moderation is staffed, by
which team and within what time, without naming the moderators' e-mails."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from controlplane.settings import get_settings
from tests.factories import World, build_world
from tests.moderation.staffing import make_team, order_moderation, staff_users
from tests.web.helpers import sign_in


@pytest.fixture
def web(herd_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from controlplane.app import create_app

    monkeypatch.setenv("HERD_WEB_COOKIE_SECURE", "false")  # plain http in tests
    get_settings.cache_clear()
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_the_server_page_names_the_staffing_team(web: TestClient, engine: Engine) -> None:
    world: World = build_world(engine)
    server_id = world.ids["server"]
    sign_in(web, world.tokens["viewer"])
    assert ">no</dd>" in web.get(f"/servers/{server_id}").text

    order_moderation(engine, server_id)
    assert "a moderation team is being assigned" in web.get(f"/servers/{server_id}").text

    [(alice, alice_mail)] = staff_users(engine, 1)
    team = make_team(web, world.headers("operator"), [(alice, "alice")])
    assigned = web.put(
        f"/api/v1/servers/{server_id}/moderation",
        headers=world.headers("operator"),
        json={"team_id": team["id"], "response_hours": 4},
    )
    assert assigned.status_code == 200, assigned.text
    page = web.get(f"/servers/{server_id}").text
    assert "staffed by Night owls (en, de-AT), answering reports within 4 hours" in page
    assert alice_mail not in page
