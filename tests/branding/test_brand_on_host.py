"""Branding reaches a real test host (tests/hosts): a logo and colours set
through the API, the brand job run as a worker runs it, and the stylesheet,
the image and the site settings script on the host; then the logo
removed, and gone from the host."""

from __future__ import annotations

import hashlib

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.jobs import service as jobs
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from provisioning.registry import pipelines
from tests.hosts.harness import TestFleet
from tests.provisioning.conftest import placed  # noqa: F401  (the fixture)
from tests.provisioning.placed import SETUP, Placed, create_setup_job, run_to_success

# A real 1x1 PNG, as Mastodon's image settings would be given.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753"
    "de0000000c49444154789c63f8cfc0000003010100c9fe92ef0000000049454e44ae426082"
)


@pytest.mark.hosts
@pytest.mark.slow
@pytest.mark.postgres
# Herd's own database plays no part in what lands on the host: one kind is enough.
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_a_branding_change_lands_on_the_host(
    db_kind: str,
    engine: Engine,
    client: TestClient,
    placed: tuple[Placed, TestFleet],  # noqa: F811
) -> None:
    setup, fleet = placed
    host = fleet["h1"]
    run_to_success(engine, create_setup_job(engine, setup), {"setup": SETUP})
    with Session(engine) as session:
        server = session.get(Server, setup.server_id)
        assert server is not None
        server.state = ServerState.active  # what the provision job's last step does
        session.add(server)
        session.commit()

    base = f"/api/v1/servers/{setup.server_id}/branding"
    answer = client.put(
        base,
        headers=setup.owner,
        json={"primary_color": "#aa3300", "custom_css": ".column { border-radius: 0 }"},
    )
    assert answer.status_code == 200, answer.text
    first_job = answer.json()["job_id"]
    logo = client.put(
        f"{base}/logo", headers={**setup.owner, "Content-Type": "image/png"}, content=PNG
    )
    assert logo.status_code == 200, logo.text
    # The job not started yet takes the logo too: one job, not two.
    assert logo.json()["job_id"] == first_job

    run_to_success(engine, first_job, pipelines())

    home = f"/home/mastodon{setup.slot}"
    css = host.path(f"{home}/live/public/herd-branding.css").read_text()
    assert "--herd-primary: #aa3300;" in css
    assert ".column { border-radius: 0 }" in css
    image = host.path(f"{home}/herd/branding/mascot.png").read_bytes()
    assert hashlib.sha256(image).hexdigest() == hashlib.sha256(PNG).hexdigest()
    script = host.path(f"{home}/herd/branding.rb").read_text()
    assert f"mascot: File.open(\"{home}/herd/branding/mascot.png\", 'rb')" in script

    # The logo removed: the next brand run takes it off the server, and
    # Mastodon's site upload with it, so Mastodon shows its own mascot.
    host.standin.clear_calls()
    removed = client.delete(f"{base}/logo", headers=setup.owner)
    assert removed.status_code == 200, removed.text
    assert removed.json()["job_id"] != first_job
    run_to_success(engine, removed.json()["job_id"], pipelines())
    assert not host.path(f"{home}/herd/branding/mascot.png").exists()
    assert "mascot:" not in host.path(f"{home}/herd/branding.rb").read_text()
    [destroyed] = host.standin.calls(contains="SiteUpload")
    assert 'SiteUpload.where(var: ["mascot"]).destroy_all' in destroyed["command"]
    assert (
        "--herd-primary: #aa3300;" in host.path(f"{home}/live/public/herd-branding.css").read_text()
    )
    # Run again, it changes nothing: the removal is not done twice.
    with Session(engine) as session:
        again = jobs.create_job(session, "brand", pipelines()["brand"].step_names, setup.server_id)
        again_id = again.id
        session.info.clear()  # no broker here: the test runs the job itself
        session.commit()
    run_to_success(engine, again_id, pipelines())
    events = client.get(f"/api/v1/jobs/{again_id}/events?limit=200", headers=setup.owner).json()
    assert events["items"]
    assert [e["task"] for e in events["items"] if e["changed"]] == []
