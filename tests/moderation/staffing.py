"""Test data for moderation staffing: the moderation add-on in force on a
server (as billing leaves it once paid), a staff team with members."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.auth.roles import StaffRole
from controlplane.billing.models import AddOn, AddOnOrder
from controlplane.sqltypes import utcnow
from tests import factories

COVERAGE = [
    {"weekday": 1, "start": "08:00", "duration_minutes": 600},
    {"weekday": 6, "start": "10:00", "duration_minutes": 240},
]


def order_moderation(engine: Engine, server_id: uuid.UUID) -> uuid.UUID:
    """A paid, active moderation add-on order for the server."""
    with Session(engine) as session:
        addon = session.exec(select(AddOn).where(AddOn.code == "moderation")).first()
        if addon is None:
            addon = AddOn(code="moderation", name="Moderation staffing", price_cents=19900)
            session.add(addon)
            session.flush()
        from controlplane.servers.models import Server

        server = session.get(Server, server_id)
        assert server is not None
        order = AddOnOrder(
            addon_id=addon.id,
            organisation_id=server.organisation_id,
            server_id=server_id,
            status="active",
            live_key=f"{addon.id}:{server_id}",
            paid_at=utcnow(),
        )
        session.add(order)
        session.commit()
        return order.id


def staff_users(engine: Engine, count: int) -> list[tuple[uuid.UUID, str]]:
    """(id, e-mail) of `count` new staff operators."""
    with Session(engine) as session:
        people = [factories.user(session, staff_role=StaffRole.operator) for _ in range(count)]
        session.commit()
        return [(p.id, p.email) for p in people]


def make_team(
    client: TestClient,
    headers: dict[str, str],
    members: list[tuple[uuid.UUID, str]],
    name: str = "Night owls",
) -> dict[str, Any]:
    """A team through the API, with `members` as (user id, Mastodon user name)."""
    answer = client.post(
        "/api/v1/moderation/teams",
        headers=headers,
        json={
            "name": name,
            "languages": ["en", "de-AT"],
            "timezone": "Europe/Berlin",
            "coverage": COVERAGE,
        },
    )
    assert answer.status_code == 201, answer.text
    team = answer.json()
    for user_id, username in members:
        added = client.post(
            f"/api/v1/moderation/teams/{team['id']}/members",
            headers=headers,
            json={"user_id": str(user_id), "mastodon_username": username},
        )
        assert added.status_code == 200, added.text
        team = added.json()
    return team
