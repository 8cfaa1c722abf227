"""An organisation's monthly moderation figures for its server: reports
received in a calendar month of its own time zone, and the median time to
the first action on them. Both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.auth.roles import OrgRole
from controlplane.moderation.reports import ModerationReport
from controlplane.servers.lifecycle import ServerState
from controlplane.settings import get_settings
from tests import factories
from tests.web.helpers import sign_in


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def mirrored(
    server_id: uuid.UUID, remote_id: str, made: str, minutes_to_action: int | None
) -> ModerationReport:
    created = at(made)
    acted = created + timedelta(minutes=minutes_to_action) if minutes_to_action else None
    return ModerationReport(
        server_id=server_id,
        remote_id=remote_id,
        target_account_id="3",
        target_acct="spammer",
        created_at=created,
        updated_at=acted or created,
        action_taken=acted is not None,
        action_taken_at=acted,
        first_seen_at=created,
        first_action_at=acted,
    )


@pytest.fixture
def portal(herd_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from controlplane.app import create_app

    monkeypatch.setenv("HERD_WEB_COOKIE_SECURE", "false")  # plain http in tests
    get_settings.cache_clear()
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def test_monthly_figures_in_the_organisations_time_zone(
    client: TestClient, portal: TestClient, engine: Engine
) -> None:
    berlin = ZoneInfo("Europe/Berlin")
    month_start = datetime.now(berlin).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    this_month = (month_start + timedelta(minutes=1)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    with Session(engine, expire_on_commit=False) as session:
        org, other = factories.organisation(session), factories.organisation(session)
        assert org.timezone == "Europe/Berlin"
        plan = factories.plan(session)
        server = factories.server(session, org, plan, ServerState.active)
        neighbour = factories.server(session, org, plan, ServerState.active)
        viewer = factories.member(session, org, OrgRole.viewer)
        outsider = factories.member(session, other, OrgRole.owner)
        tokens = {
            "viewer": factories.token(session, viewer)[1],
            "outsider": factories.token(session, outsider)[1],
        }
        session.add_all(
            [
                # 30 Sep 23:30 in Berlin (CEST): September.
                mirrored(server.id, "1", "2026-09-30T21:30:00", 5),
                # 1 Oct 00:30 in Berlin: October, acted on after 30 minutes.
                mirrored(server.id, "2", "2026-09-30T22:30:00", 30),
                mirrored(server.id, "3", "2026-10-10T12:00:00", 90),
                mirrored(server.id, "4", "2026-10-20T08:00:00", 10),
                # 31 Oct 23:30 in Berlin (CET since the 25th): October, not
                # acted on yet.
                mirrored(server.id, "5", "2026-10-31T22:30:00", None),
                # 1 Nov 00:30 in Berlin: November.
                mirrored(server.id, "6", "2026-10-31T23:30:00", 1),
                # Another server's report.
                mirrored(neighbour.id, "2", "2026-10-15T10:00:00", 500),
                # This month's, for the server page.
                mirrored(server.id, "7", this_month, 20),
                mirrored(server.id, "8", this_month, None),
            ]
        )
        session.commit()

    def figures(who: str, server_id: uuid.UUID, month: str | None = "2026-10") -> tuple:
        answer = client.get(
            f"/api/v1/servers/{server_id}/moderation/figures",
            params={"month": month} if month else {},
            headers={"Authorization": f"Bearer {tokens[who]}"},
        )
        return answer.status_code, answer.headers["content-type"], answer.json()

    status, _, october = figures("viewer", server.id)
    assert status == 200
    assert october == {
        "server_id": str(server.id),
        "month": "2026-10",
        "timezone": "Europe/Berlin",
        "reports_received": 4,
        "reports_acted_on": 3,
        "median_minutes_to_first_action": 30.0,
    }
    september = figures("viewer", server.id, "2026-09")[2]
    assert (september["reports_received"], september["median_minutes_to_first_action"]) == (1, 5)
    empty = figures("viewer", server.id, "2025-01")[2]
    assert (empty["reports_received"], empty["median_minutes_to_first_action"]) == (0, None)
    current = figures("viewer", server.id, None)[2]
    assert current["month"] == month_start.strftime("%Y-%m")
    assert (current["reports_received"], current["median_minutes_to_first_action"]) == (2, 20)
    # The organisation's server page shows this month's.
    sign_in(portal, tokens["viewer"])
    page = portal.get(f"/servers/{server.id}").text
    assert "2 received, 1 acted on; median time to first action 20 minutes" in page

    for month in ("2026-13", "0000-01", "9999-12"):
        assert figures("viewer", server.id, month)[:2] == (422, "application/problem+json")
    # Another tenant learns nothing: the same answer as a server that does
    # not exist.
    hidden, missing = figures("outsider", server.id), figures("outsider", uuid.uuid4())
    assert hidden[0] == 404
    assert hidden[1] == "application/problem+json"
    assert {k: v for k, v in hidden[2].items() if k != "request_id"} == {
        k: v for k, v in missing[2].items() if k != "request_id"
    }
