"""GET /servers/{id}/preview: the files Herd would deploy on the server's
host now, as provisioning.render renders them, with every secret masked."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.fleet.models import Host
from controlplane.servers import secrets
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from provisioning.deployment import MANAGED_FILES, effective_variables
from provisioning.redaction import MASK
from provisioning.render import render
from provisioning.variables import server_variables
from tests.factories import World

ENV = "home/mastodon/live/.env.production.j2"


def _place(engine: Engine, server_id: uuid.UUID) -> dict[str, str]:
    """Give the world's server the slot provisioning would, and its secrets."""
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        assert server.host_id is not None
        server.slot = 0
        session.add(server)
        stored = secrets.ensure(session, server.id)
        session.commit()
    return stored


def _expected(engine: Engine, server_id: uuid.UUID, stored: dict[str, str]) -> dict[str, str]:
    """Each template rendered with the server's variables, secret values
    then replaced by the mask: built here without the preview's code."""
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        host = session.get(Host, server.host_id)
        assert host is not None
        values = effective_variables(server_variables(server, host, stored))
    expected = {}
    for managed in MANAGED_FILES:
        content = render(managed.template, values)
        for value in stored.values():
            content = content.replace(value, MASK)
        expected[managed.template] = content
    return expected


def _preview(client: TestClient, world: World, principal: str, server: str = "server"):
    return client.get(
        f"/api/v1/servers/{world.ids[server]}/preview", headers=world.headers(principal)
    )


def test_the_preview_is_what_would_be_rendered_with_secrets_masked(
    client: TestClient, world: World, engine: Engine
) -> None:
    server_id = world.ids["server"]
    stored = _place(engine, server_id)
    response = _preview(client, world, "owner")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["server_id"] == str(server_id)
    assert body["mask"] == MASK
    files = {f["template"]: f for f in body["files"]}
    expected = _expected(engine, server_id, stored)
    assert set(files) == set(expected)
    for template, content in expected.items():
        assert files[template]["content"] == content, template
    env = files[ENV]
    assert env["path"] == "/home/mastodon0/live/.env.production"
    assert (env["owner"], env["mode"], env["secret"], env["sha256"]) == (
        "mastodon0",
        "0600",
        True,
        None,
    )
    assert f"SECRET_KEY_BASE={MASK}" in env["content"]
    assert f"DB_PASS={MASK}" in env["content"]
    site = files["etc/nginx/sites-available/mastodon.conf.j2"]
    assert site["path"] == "/etc/nginx/sites-available/mastodon0.conf"
    assert site["sha256"] == hashlib.sha256(site["content"].encode()).hexdigest()
    # Not one secret anywhere in the answer, in any form.
    for value in stored.values():
        assert value not in response.text
        assert json.dumps(value)[1:-1] not in response.text


def test_secrets_from_settings_and_fleet_variables_are_masked(
    client: TestClient, world: World, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _place(engine, world.ids["server"])
    # A short SMTP password with quote and dollar (below the Redactor's
    # length floor, and written escaped), and secrets among fleet variables.
    monkeypatch.setenv("HERD_SMTP_SERVER", "smtp.example-herd.org")
    monkeypatch.setenv("HERD_SMTP_LOGIN", "herd")
    monkeypatch.setenv("HERD_SMTP_PASSWORD", "p'$w")
    monkeypatch.setenv(
        "HERD_PLAYBOOK_VARS",
        json.dumps(
            {
                "mastodon_redis_password": "redis-pass-0123",
                "mastodon_env_extra": {"PARTNER_API_TOKEN": "tok-98765", "FEATURE": "on-value"},
            }
        ),
    )
    get_settings.cache_clear()
    response = _preview(client, world, "admin")
    assert response.status_code == 200, response.text
    for leaked in ("p'$w", "p'\\$w", "redis-pass-0123", "tok-98765"):
        assert leaked not in response.text
    env = next(f for f in response.json()["files"] if f["template"] == ENV)["content"]
    assert f"SMTP_PASSWORD={MASK}" in env
    assert f"REDIS_PASSWORD={MASK}" in env
    assert f"PARTNER_API_TOKEN={MASK}" in env
    assert "FEATURE=on-value" in env


def test_who_may_read_the_preview(client: TestClient, world: World, engine: Engine) -> None:
    _place(engine, world.ids["server"])
    for principal in ("owner", "admin", "operator", "staff_admin", "readonly"):
        assert _preview(client, world, principal).status_code == 200, principal
    # Billing and viewers follow a server; they do not configure it.
    for principal, status in (
        ("billing", 403),
        ("viewer", 403),
        ("outsider", 404),
        ("staff_without_scope", 404),
        ("anonymous", 401),
    ):
        response = _preview(client, world, principal)
        assert response.status_code == status, principal
        assert response.headers["content-type"] == "application/problem+json"


def test_a_server_not_yet_on_a_host_answers_a_problem(client: TestClient, world: World) -> None:
    response = _preview(client, world, "owner", "requested_server")
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:herd:problem:server-not-placed"
    assert problem["state"] == "requested"
    assert "not placed on a host" in problem["detail"]
