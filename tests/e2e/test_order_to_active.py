"""An order through the API becomes an active Mastodon server on a test host,
and no secret of it is left anywhere in clear."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.fleet.models import Host
from controlplane.servers import secrets as server_secrets
from controlplane.servers.models import Server
from provisioning.deployment import render_files
from provisioning.variables import deployment_variables
from tests.e2e.stack import Stack
from tests.factories import fingerprint
from tests.hosts import webcheck

pytestmark = [pytest.mark.hosts, pytest.mark.slow]

# Mastodon's install guide, as the stand-in records it (packages skipped):
# Ruby for the checkout, gems and JS packages, the database, the assets,
# then the services.
INSTALL_SEQUENCE = [
    "rbenv install",
    "bundle config set --local deployment true",
    "bundle config set --local without",
    "bundle install",
    "yarn install",
    "bundle exec rails db:setup",
    "bundle exec rails assets:precompile",
    "systemctl enable",
]


def in_order(commands: list[str], expected: list[str]) -> list[str]:
    """The expected prefixes in the order they first appear in ``commands``."""
    firsts = {}
    for prefix in expected:
        for index, command in enumerate(commands):
            if command.startswith(prefix):
                firsts[prefix] = index
                break
    return sorted(firsts, key=firsts.__getitem__)


def all_events(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    events, cursor = [], None
    while True:
        params = {"limit": 500, **({"after": cursor} if cursor else {})}
        page = stack.ok("operator", "GET", f"/jobs/{job_id}/events", params=params)
        events += page["items"]
        if not page["next_cursor"]:
            return events
        cursor = page["next_cursor"]


def deployed_variables(engine: Engine, server_id: str) -> tuple[dict[str, Any], list[str]]:
    with Session(engine) as session:
        server = session.get(Server, uuid.UUID(server_id))
        assert server is not None
        assert server.host_id is not None
        host = session.get(Host, server.host_id)
        assert host is not None
        secrets = server_secrets.load(session, server.id)
        assert secrets
        variables = deployment_variables(session, server, host, secrets)
        return variables, list(secrets.values())


def test_an_order_becomes_an_active_server(stack: Stack, engine: Engine, herd_env: Path) -> None:
    stack.register_hosts()
    stack.start_worker()
    server_id = stack.order("social.city-herd.social")
    stack.approve(server_id)

    server = stack.wait_for_state(server_id, "active")
    host = stack.fleet["h1"]
    assert server["version"] == "4.5.1"
    assert webcheck.instance(host)["version"] == "4.5.1"
    assert webcheck.healthy(host)

    commands = host.standin.commands()
    assert in_order(commands, INSTALL_SEQUENCE) == INSTALL_SEQUENCE, commands
    setup = host.standin.calls(contains="rails db:setup")
    assert setup
    assert setup[0]["env"].get("RAILS_ENV") == "production"

    # What landed is, byte for byte, what Herd renders for this server (the
    # same files its preview shows and its drift check compares).
    variables, secrets = deployed_variables(engine, server_id)
    user = variables["mastodon_user"]
    files = render_files(variables)
    assert len(files) == 9
    for file in files:
        assert host.read_text(file.path) == file.content, file.path
    env_file = host.read_text(f"/home/{user}/live/.env.production")
    assert "LOCAL_DOMAIN=social.city-herd.social" in env_file

    # Debian's nginx, inside the host, accepts the vhost that landed.
    vhost = host.read_text(f"/etc/nginx/sites-available/{user}.conf")
    assert "server_name social.city-herd.social" in vhost
    nginx = host.exec(["nginx", "-t"], check=False)
    assert nginx.returncode == 0, nginx.stderr

    # The job and its per-task events are readable through the API.
    (job,) = stack.jobs(server_id)
    detail = stack.ok("operator", "GET", f"/jobs/{job['id']}")
    assert detail["state"] == "succeeded"
    assert [s["state"] for s in detail["steps"]] == ["done"] * len(detail["steps"])
    events = all_events(stack, job["id"])
    provision = [e for e in events if e["step"] == "run_provision"]
    assert provision
    assert {e["host"] for e in provision} == {"h1"}
    assert any(e["changed"] for e in provision)
    assert all(e["status"] in {"ok", "changed", "skipped"} for e in provision)

    assert_no_secret_in_clear(stack, engine, herd_env, secrets, events)


def assert_no_secret_in_clear(
    stack: Stack, engine: Engine, data_dir: Path, secrets: list[str], events: list[dict]
) -> None:
    assert all(len(s) >= 16 for s in secrets)
    rows = json.dumps(fingerprint(engine))
    text_of_events = json.dumps(events)
    logs = stack.tail(characters=10**9)
    files = {path: path.read_bytes() for path in data_dir.rglob("*") if path.is_file()}
    for secret in secrets:
        assert secret not in rows, "a secret is stored in clear"
        assert secret not in text_of_events, "a secret reached a job event"
        assert secret not in logs, "a secret reached a worker log"
        for path, content in files.items():
            assert secret.encode() not in content, f"a secret is left in {path}"
    # ansible-runner's private folders are gone once each run ends.
    runs = data_dir / "runs"
    assert not runs.exists() or not any(runs.iterdir())
