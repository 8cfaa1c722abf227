"""Ordering servers, their domains, settings and lifecycle through the API."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.factories import World, fingerprint

ORDER = {"domain": "social.tenant-herd.org", "plan": "small", "title": "Our server"}


def _order(client: TestClient, world: World, **overrides: object) -> dict:
    response = client.post(
        f"/api/v1/organisations/{world.ids['org']}/servers",
        json={**ORDER, **overrides},
        headers=world.headers("admin"),
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_an_order_is_recorded_as_requested_with_its_timeline_and_audit(
    client: TestClient, world: World
) -> None:
    server = _order(client, world)
    assert server["state"] == "requested"
    assert server["domain"] == "social.tenant-herd.org"
    assert server["plan"] == "small"
    assert server["host_id"] is None

    events = client.get(f"/api/v1/servers/{server['id']}/events", headers=world.headers("viewer"))
    assert [(e["event"], e["to_state"]) for e in events.json()["items"]] == [("order", "requested")]
    audit = client.get(
        f"/api/v1/organisations/{world.ids['org']}/audit",
        params={"action": "server.order"},
        headers=world.headers("owner"),
    ).json()["items"]
    assert len(audit) == 1
    assert audit[0]["target_id"] == server["id"]
    assert audit[0]["actor_label"] == "admin@org-a.example-herd.org"
    assert audit[0]["request_id"]


def test_unicode_domain_is_stored_as_idna_and_shown_both_ways(
    client: TestClient, world: World
) -> None:
    server = _order(client, world, domain="Bücher-Gilde.de")
    assert server["domain"] == "bücher-gilde.de".encode("idna").decode()
    assert server["domain_unicode"] == "bücher-gilde.de"


@pytest.mark.parametrize(
    "variant", ["social.tenant-herd.org", "SOCIAL.Tenant-Herd.org", "social.tenant-herd.org."]
)
def test_a_domain_already_ordered_answers_409_in_any_spelling(
    client: TestClient, world: World, engine: Engine, variant: str
) -> None:
    _order(client, world)
    before = fingerprint(engine)
    again = client.post(
        f"/api/v1/organisations/{world.ids['org_b']}/servers",
        json={**ORDER, "domain": variant},
        headers=world.headers("outsider"),
    )
    assert again.status_code == 409
    assert again.json()["type"] == "urn:herd:problem:already-exists"
    assert fingerprint(engine) == before


def test_the_domain_can_never_change(client: TestClient, world: World, engine: Engine) -> None:
    server = _order(client, world)
    before = fingerprint(engine)
    for field in ("domain", "local_domain"):
        response = client.patch(
            f"/api/v1/servers/{server['id']}",
            json={field: "other.tenant-herd.org"},
            headers=world.headers("owner"),
        )
        assert response.status_code == 422
        assert "never changes" in response.text
    assert fingerprint(engine) == before


def test_settings_change_and_are_audited(client: TestClient, world: World) -> None:
    server = _order(client, world)
    response = client.patch(
        f"/api/v1/servers/{server['id']}",
        json={"title": "New title", "registrations_mode": "none", "labels": {"tier": "gold"}},
        headers=world.headers("admin"),
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["title"], body["registrations_mode"], body["labels"]) == (
        "New title",
        "none",
        {"tier": "gold"},
    )
    assert (
        client.get(f"/api/v1/servers/{server['id']}", headers=world.headers("viewer")).json()[
            "title"
        ]
        == "New title"
    )


def test_suspend_and_resume_by_staff_move_the_state_and_keep_a_timeline(
    client: TestClient, world: World
) -> None:
    sid = world.ids["server"]
    staff = world.headers("operator")
    suspended = client.post(
        f"/api/v1/servers/{sid}/suspend", json={"reason": "court order 7"}, headers=staff
    )
    assert suspended.json()["state"] == "suspended"
    assert suspended.json()["state_reason"] == "court order 7"
    resumed = client.post(f"/api/v1/servers/{sid}/resume", json={}, headers=staff)
    assert resumed.json()["state"] == "active"
    events = client.get(f"/api/v1/servers/{sid}/events", headers=world.headers("owner")).json()
    assert [(e["event"], e["from_state"], e["to_state"]) for e in events["items"]] == [
        ("suspend", "active", "suspended"),
        ("resume", "suspended", "active"),
    ]


@pytest.mark.parametrize(
    ("server_key", "action", "body"),
    [
        ("requested_server", "suspend", {"reason": "not running yet"}),
        ("server", "resume", {}),
        ("suspended_server", "suspend", {"reason": "twice"}),
    ],
)
def test_an_invalid_transition_answers_409_and_changes_nothing(
    client: TestClient, world: World, engine: Engine, server_key: str, action: str, body: dict
) -> None:
    before = fingerprint(engine)
    response = client.post(
        f"/api/v1/servers/{world.ids[server_key]}/{action}",
        json=body,
        headers=world.headers("operator"),
    )
    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == "urn:herd:problem:invalid-transition"
    assert problem["event"] == action
    assert "cannot" in problem["detail"]
    assert fingerprint(engine) == before


def test_cancel_before_provisioning_deletes_and_after_tears_down(
    client: TestClient, world: World
) -> None:
    owner = world.headers("owner")
    early = client.post(f"/api/v1/servers/{world.ids['requested_server']}/cancel", headers=owner)
    assert early.json()["state"] == "deleted"
    late = client.post(
        f"/api/v1/servers/{world.ids['server']}/cancel", json={"reason": "moving"}, headers=owner
    )
    assert late.json()["state"] == "deprovisioning"
    again = client.post(f"/api/v1/servers/{world.ids['requested_server']}/cancel", headers=owner)
    assert again.status_code == 409
    listed = client.get("/api/v1/servers", headers=owner).json()["items"]
    assert world.ids["requested_server"] not in {uuid.UUID(s["id"]) for s in listed}


def test_a_racing_transition_loses_cleanly(
    client: TestClient, world: World, engine: Engine
) -> None:
    """Two staff suspend the same server at once: the compare-and-set lets
    exactly one win, even if the loser read the server before the winner wrote."""
    from sqlmodel import Session

    from controlplane.problems import InvalidTransition
    from controlplane.servers.lifecycle import Actor
    from controlplane.servers.models import Server
    from controlplane.servers.service import apply_event

    with Session(engine) as first, Session(engine) as second:
        a = first.get(Server, world.ids["server"])
        b = second.get(Server, world.ids["server"])
        assert a is not None
        assert b is not None
        apply_event(first, a, "suspend", Actor.staff, "first")
        first.commit()
        with pytest.raises(InvalidTransition, match="changed state meanwhile"):
            apply_event(second, b, "suspend", Actor.staff, "second")
        second.rollback()
    with engine.connect() as connection:
        events = connection.execute(
            text("SELECT actor FROM server_events WHERE event = 'suspend'")
        ).all()
    assert [e.actor for e in events] == ["first"]


def test_listing_pages_through_everything_once_and_filters(
    client: TestClient, world: World
) -> None:
    for n in range(7):
        _order(client, world, domain=f"n{n}.tenant-herd.org")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(
            f"/api/v1/organisations/{world.ids['org']}/servers",
            params=params,
            headers=world.headers("viewer"),
        ).json()
        seen += [s["domain"] for s in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    # 7 ordered here and 4 in the world (live, new, paused, broken).
    assert len(seen) == len(set(seen)) == 11
    requested = client.get(
        "/api/v1/servers",
        params={"state": "requested", "q": "n3."},
        headers=world.headers("owner"),
    ).json()["items"]
    assert [s["domain"] for s in requested] == ["n3.tenant-herd.org"]


def test_staff_see_every_server_and_hosts_while_members_see_theirs(
    client: TestClient, world: World
) -> None:
    client.post(
        f"/api/v1/organisations/{world.ids['org_b']}/servers",
        json={**ORDER, "domain": "b.tenant-herd.org"},
        headers=world.headers("outsider"),
    )
    as_b = client.get("/api/v1/servers", headers=world.headers("outsider")).json()["items"]
    assert [s["domain"] for s in as_b] == ["b.tenant-herd.org"]
    as_staff = client.get("/api/v1/servers", headers=world.headers("operator")).json()["items"]
    assert len(as_staff) == 5
    live = next(s for s in as_staff if s["domain"] == "live.org-a-herd.social")
    assert live["host_id"] == str(world.ids["host"])
    as_owner = client.get(f"/api/v1/servers/{live['id']}", headers=world.headers("owner")).json()
    assert as_owner["host_id"] is None


def test_another_tenants_server_looks_exactly_like_a_missing_one(
    client: TestClient, world: World
) -> None:
    outsider = world.headers("outsider")
    real = client.get(f"/api/v1/servers/{world.ids['server']}", headers=outsider)
    missing = client.get(f"/api/v1/servers/{uuid.uuid4()}", headers=outsider)
    assert real.status_code == missing.status_code == 404
    strip = lambda r: {k: v for k, v in r.json().items() if k != "request_id"}  # noqa: E731
    assert strip(real) == strip(missing)
