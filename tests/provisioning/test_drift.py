"""Drift detection: the `inspect` job compares each managed file on a
server's host with what Herd renders for it (same, differs, missing).

The last test runs the real playbooks on a test host (tests/hosts): provision
and brand as the provisioning pipeline runs them, then inspect.yml.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.audit.models import AuditEntry
from controlplane.fleet.models import Host
from controlplane.servers import secrets
from controlplane.servers.models import Server
from provisioning.deployment import render_files
from provisioning.registry import pipelines
from provisioning.steps.inspect import FoundFile, compare, parse_report
from provisioning.variables import deployment_variables
from tests.factories import build_world
from tests.hosts.harness import TestFleet
from tests.playbooks.samples import sample_vars
from tests.provisioning.placed import SETUP, Placed, create_setup_job, run_to_success

# -- the comparison, without a host ---------------------------------------------------


def _found(file: Any, **changes: Any) -> FoundFile:
    seen = {
        "exists": True,
        "regular": True,
        "sha256": file.sha256,
        "owner": file.owner,
        "group": file.group,
        "mode": file.mode,
    }
    return FoundFile(**{**seen, **changes})


def test_each_file_is_same_differs_or_missing() -> None:
    files = render_files(sample_vars())
    env, site, web, *_ = files
    found = {f.path: _found(f) for f in files}
    found[site.path] = _found(site, sha256="0" * 64)
    found[env.path] = _found(env, mode="0644")
    del found[web.path]
    result = compare(files, found)
    by_path = {entry["path"]: entry for entry in result["files"]}
    assert by_path[site.path]["status"] == "differs"
    assert by_path[web.path]["status"] == "missing"
    assert by_path[env.path] == {
        "path": env.path,
        "template": env.template,
        "status": "same",
        "attributes": ["mode is 0644, expected 0600"],
    }
    assert result["counts"] == {"same": len(files) - 2, "differs": 1, "missing": 1}
    assert result["drifted"] is True
    # No content and no digest in the result.
    text = json.dumps(result)
    assert all(f.sha256 not in text and f.content not in text for f in files)


def test_a_folder_where_a_file_should_be_differs() -> None:
    files = render_files(sample_vars())[:1]
    found = {files[0].path: FoundFile(exists=True, regular=False, mode="0755")}
    assert compare(files, found)["files"][0]["status"] == "differs"


def test_the_report_is_read_from_the_playbooks_message() -> None:
    msg = {
        "herd_inspect": {
            "paths": ["/a", "/b"],
            "exists": [True, False],
            "regular": [True, False],
            "checksums": ["ab" * 32, ""],
            "owners": ["root", ""],
            "groups": ["root", ""],
            "modes": ["0644", ""],
        }
    }
    assert parse_report({"msg": msg}) == {
        "/a": FoundFile(True, True, "ab" * 32, "root", "root", "0644"),
        "/b": FoundFile(False),
    }
    assert parse_report({"msg": "Hello"}) is None
    assert parse_report({}) is None


# -- starting a check through the API ----------------------------------------------------


def test_staff_start_one_drift_check_at_a_time(client: TestClient, engine: Engine) -> None:
    world = build_world(engine)
    server_id = world.ids["server"]
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        server.slot = 0
        session.add(server)
        session.commit()
    url = f"/api/v1/servers/{server_id}/drift"
    first = client.post(url, headers=world.headers("operator"))
    assert first.status_code == 202, first.text
    job = first.json()
    assert (job["kind"], job["server_id"], job["state"]) == ("inspect", str(server_id), "pending")
    detail = client.get(f"/api/v1/jobs/{job['id']}", headers=world.headers("owner")).json()
    assert [step["name"] for step in detail["steps"]] == ["inspect_files"]
    # While it is under way, asking again answers the same job.
    again = client.post(url, headers=world.headers("staff_admin"))
    assert again.status_code == 202
    assert again.json()["id"] == job["id"]
    with Session(engine) as session:
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.action == "server.drift_check")
        ).all()
    assert [e.details for e in entries] == [{"job": job["id"]}] * 2

    unplaced = client.post(
        f"/api/v1/servers/{world.ids['requested_server']}/drift", headers=world.headers("operator")
    )
    assert unplaced.status_code == 409
    assert unplaced.json()["type"] == "urn:herd:problem:server-not-placed"


# -- on a real host ------------------------------------------------------------------------


def host_row(session: Session, server: Server) -> Host:
    host = session.get(Host, server.host_id)
    assert host is not None
    return host


def _check(client: TestClient, engine: Engine, setup: Placed) -> tuple[dict[str, Any], str]:
    """Start a drift check through the API, run it here, read it back."""
    started = client.post(f"/api/v1/servers/{setup.server_id}/drift", headers=setup.operator)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    run_to_success(engine, uuid.UUID(job_id), pipelines())
    detail = client.get(f"/api/v1/jobs/{job_id}", headers=setup.operator)
    events = client.get(f"/api/v1/jobs/{job_id}/events", headers=setup.operator)
    assert events.json()["items"], "the playbook's tasks were not recorded"
    assert not any(e["changed"] for e in events.json()["items"]), "inspect.yml changed things"
    return detail.json()["steps"][0]["result"], detail.text + events.text


@pytest.mark.hosts
@pytest.mark.slow
@pytest.mark.postgres
# Herd's own database plays no part in what lands on the host: one kind is enough.
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_drift_on_a_provisioned_host(
    db_kind: str, engine: Engine, client: TestClient, placed: tuple[Placed, TestFleet]
) -> None:
    setup, fleet = placed
    host = fleet["h1"]
    run_to_success(engine, create_setup_job(engine, setup), {"setup": SETUP})

    result, answered = _check(client, engine, setup)
    assert result["counts"] == {"same": 9, "differs": 0, "missing": 0}, result
    assert result["drifted"] is False
    assert not any("attributes" in entry for entry in result["files"]), result
    with Session(engine) as session:
        server = session.get(Server, setup.server_id)
        assert server is not None
        stored = secrets.ensure(session, server.id)
        placed_on = host_row(session, server)
        files = render_files(deployment_variables(session, server, placed_on, stored))
    # Neither the job nor its events hold a secret, or a digest of a file.
    for value in stored.values():
        assert value not in answered
    for file in files:
        assert file.sha256 not in answered
    home = f"/home/mastodon{setup.slot}"
    assert "SECRET_KEY_BASE=" in host.path(f"{home}/live/.env.production").read_text()

    # Someone edits one file by hand, deletes another and opens up the secrets.
    css = host.path(f"{home}/live/public/herd-branding.css")
    css.write_text(css.read_text() + "/* edited by hand */\n")
    host.path(f"{home}/herd/branding.rb").unlink()
    host.exec(["chmod", "0644", f"{home}/live/.env.production"])

    result, _ = _check(client, engine, setup)
    by_path = {entry["path"]: entry for entry in result["files"]}
    assert by_path[f"{home}/live/public/herd-branding.css"]["status"] == "differs"
    assert by_path[f"{home}/herd/branding.rb"]["status"] == "missing"
    assert by_path[f"{home}/live/.env.production"]["status"] == "same"
    assert by_path[f"{home}/live/.env.production"]["attributes"] == ["mode is 0644, expected 0600"]
    assert result["counts"] == {"same": 7, "differs": 1, "missing": 1}
    assert result["drifted"] is True
