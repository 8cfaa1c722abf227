"""Bad input gets a 4xx problem answer and leaves the database as it was."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.factories import World, fingerprint

GOOD_ORDER = {"domain": "ok.tenant-herd.org", "plan": "small", "title": "T"}

BAD_BODIES = [
    # (path template, raw body or json, expected status, expected problem kind)
    ("/organisations/{org}/servers", b'{"domain": "x.org", ', 400, "malformed-body"),
    ("/organisations/{org}/servers", b"\xff\xfe not json", 400, "malformed-body"),
    ("/organisations/{org}/servers", b"[]", 422, "invalid-input"),
    ("/organisations/{org}/servers", {**GOOD_ORDER, "title": 5}, 422, "invalid-input"),
    ("/organisations/{org}/servers", {**GOOD_ORDER, "labels": ["x"]}, 422, "invalid-input"),
    ("/organisations/{org}/servers", {**GOOD_ORDER, "title": ""}, 422, "invalid-input"),
    (
        "/organisations/{org}/servers",
        {**GOOD_ORDER, "description": "x" * 201},
        422,
        "invalid-input",
    ),
    ("/organisations/{org}/servers", {**GOOD_ORDER, "colour": "red"}, 422, "invalid-input"),
    (
        "/organisations/{org}/servers",
        {**GOOD_ORDER, "registrations_mode": "maybe"},
        422,
        "invalid-input",
    ),
    ("/organisations/{org}/servers", {**GOOD_ORDER, "plan": "gold"}, 422, "invalid-input"),
    ("/organisations/{org}/servers", {**GOOD_ORDER, "plan": "retired"}, 422, "invalid-input"),
    ("/organisations/{org}/servers", {**GOOD_ORDER, "domain": "10.0.0.1"}, 422, "invalid-input"),
    ("/organisations/{org}/servers", {**GOOD_ORDER, "domain": "x.example"}, 422, "invalid-input"),
    (
        "/organisations/{org}/servers",
        {**GOOD_ORDER, "domain": "no_underscores.org"},
        422,
        "invalid-input",
    ),
    ("/organisations/{org}/servers", {**GOOD_ORDER, "domain": "localhost"}, 422, "invalid-input"),
    (
        "/organisations/{org}/servers",
        {**GOOD_ORDER, "contact_email": "not-mail"},
        422,
        "invalid-input",
    ),
    ("/organisations", {"name": "X", "slug": "Bad Slug"}, 422, "invalid-input"),
    (
        "/organisations",
        {"name": "X", "slug": "ok", "timezone": "Mars/Olympus"},
        422,
        "invalid-input",
    ),
    ("/tokens", {"name": "t", "scopes": ["root"]}, 422, "invalid-input"),
    ("/tokens", {"name": "t", "expires_in_days": 5000}, 422, "invalid-input"),
    ("/tokens", {"name": "t", "expires_in_days": "soon"}, 422, "invalid-input"),
]


@pytest.mark.parametrize(("path", "body", "status", "kind"), BAD_BODIES)
def test_bad_bodies_are_refused_and_change_nothing(
    client: TestClient,
    world: World,
    engine: Engine,
    path: str,
    body: object,
    status: int,
    kind: str,
) -> None:
    before = fingerprint(engine)
    url = "/api/v1" + path.replace("{org}", str(world.ids["org"]))
    headers = {**world.headers("owner"), "Content-Type": "application/json"}
    if isinstance(body, bytes):
        response = client.post(url, content=body, headers=headers)
    else:
        response = client.post(url, json=body, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"urn:herd:problem:{kind}"
    assert problem["status"] == status
    assert problem["detail"]
    assert fingerprint(engine) == before


def test_invalid_domain_problem_names_the_field_and_the_reason(
    client: TestClient, world: World
) -> None:
    response = client.post(
        f"/api/v1/organisations/{world.ids['org']}/servers",
        json={**GOOD_ORDER, "domain": "192.0.2.1"},
        headers=world.headers("owner"),
    )
    assert response.json()["field"] == "domain"
    assert "IP address" in response.json()["detail"]


def test_unknown_field_is_named_in_the_problem(client: TestClient, world: World) -> None:
    response = client.post(
        f"/api/v1/organisations/{world.ids['org']}/servers",
        json={**GOOD_ORDER, "colour": "red"},
        headers=world.headers("owner"),
    )
    assert response.json()["errors"][0]["location"] == ["body", "colour"]


def test_oversize_bodies_are_refused_declared_or_streamed(
    client: TestClient, world: World, engine: Engine
) -> None:
    before = fingerprint(engine)
    url = f"/api/v1/organisations/{world.ids['org']}/servers"
    headers = {**world.headers("owner"), "Content-Type": "application/json"}
    huge = b'{"title": "' + b"x" * 2_000_000 + b'"}'
    declared = client.post(url, content=huge, headers=headers)

    def chunks():  # no Content-Length: the limit must hold while streaming
        for _ in range(40):
            yield b"x" * 65536

    streamed = client.post(url, content=chunks(), headers=headers)
    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["type"] == "urn:herd:problem:payload-too-large"
    assert fingerprint(engine) == before


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/servers/not-a-uuid",
        "/api/v1/servers?limit=0",
        "/api/v1/servers?limit=100000",
        "/api/v1/servers?cursor=%%%",
        "/api/v1/servers?state=exploded",
        "/api/v1/audit?since=yesterday",
        "/api/v1/audit?since=2026-01-01T00:00:00",
    ],
)
def test_bad_query_and_path_values_are_4xx_problems(
    client: TestClient, world: World, url: str
) -> None:
    response = client.get(url, headers=world.headers("operator"))
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_unknown_paths_and_methods_are_problems(client: TestClient, world: World) -> None:
    missing = client.get("/api/v1/nothing-here", headers=world.headers("owner"))
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    wrong = client.put("/api/v1/servers", headers=world.headers("owner"))
    assert wrong.status_code == 405
    assert wrong.headers["content-type"] == "application/problem+json"
