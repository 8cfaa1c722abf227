"""The `backups` job on a real test host (tests/hosts): after a backup taken
the way upgrade.yml takes one, the job lists it with its label, release and
size, and changes nothing on the host."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.jobs import service as jobs
from provisioning.pipeline import Pipeline
from provisioning.registry import pipelines
from provisioning.steps.provision import playbook_step
from tests.hosts.harness import TestFleet
from tests.provisioning.conftest import placed  # noqa: F401  (the fixture)
from tests.provisioning.placed import SETUP, Placed, create_setup_job, run_to_success

# What upgrade.yml names the backup it takes before moving to v4.5.2.
LABEL = "pre-upgrade-v4.5.2-20261201T020000Z"
TAKE = Pipeline(
    "take_backup",
    (playbook_step("backup.yml", lambda _session, _server: {"mastodon_backup_label": LABEL}),),
)


def _tree(root: Any) -> dict[str, tuple[int, float]]:
    """Every file under ``root`` with its size and modification time."""
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.hosts
@pytest.mark.slow
@pytest.mark.postgres
# Herd's own database plays no part in what the host holds: one kind is enough.
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_the_backups_job_lists_an_upgrade_backup(
    db_kind: str,
    engine: Engine,
    client: TestClient,
    placed: tuple[Placed, TestFleet],  # noqa: F811
) -> None:
    setup, fleet = placed
    host = fleet["h1"]
    run_to_success(engine, create_setup_job(engine, setup), {"setup": SETUP})
    with Session(engine) as session:
        take = jobs.create_job(session, TAKE.kind, TAKE.step_names, setup.server_id).id
        session.info.clear()  # no broker here: the test runs the job itself
        session.commit()
    run_to_success(engine, take, {TAKE.kind: TAKE})
    backups_dir = host.path(f"/home/mastodon{setup.slot}/herd/backups")
    before = _tree(backups_dir)
    assert f"{LABEL}/manifest.json" in before, before

    url = f"/api/v1/servers/{setup.server_id}/backups"
    started = client.post(f"{url}/refresh", headers=setup.owner)
    assert started.status_code == 202, started.text
    job_id = started.json()["id"]
    run_to_success(engine, job_id, pipelines())

    body = client.get(url, headers=setup.owner).json()
    assert body["checked_by_job"] == job_id
    assert body["refresh_job_id"] is None
    [backup] = [b for b in body["on_host"] if b["label"] == LABEL]
    assert backup["version"] == "v4.5.1"  # what the server ran when it was taken
    assert backup["complete"] is True
    assert backup["uploaded"] is False
    assert "database.dump" in backup["files"]
    assert "env.production" in backup["files"]
    assert backup["size_bytes"] == sum(
        size for name, (size, _) in before.items() if name.startswith(f"{LABEL}/")
    )

    # Read-only: no task reported a change, and every file is as it was.
    events = client.get(f"/api/v1/jobs/{job_id}/events?limit=200", headers=setup.owner).json()
    assert events["items"], "the playbook's tasks were not recorded"
    assert not any(e["changed"] for e in events["items"]), "backups.yml changed things"
    assert _tree(backups_dir) == before
    # The log holds a count, not the list (the step's result has it).
    assert any(e["result"] == {"backups": len(body["on_host"])} for e in events["items"])
