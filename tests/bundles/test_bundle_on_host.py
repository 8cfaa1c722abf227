"""The whole journey of an in-house team on a support contract, on a real
test host: Herd provisions the server; the team pulls the bundle with its
secrets through the CLI, runs plain `ansible-playbook -i inventory
upgrade.yml` from the unpacked folder (a process of its own, in that folder,
that imports nothing of Herd's), and reports the run back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from typer.testing import CliRunner

from controlplane.auth.roles import OrgRole, Scope
from controlplane.billing.models import AddOn, AddOnOrder
from controlplane.cli.main import app
from controlplane.fleet.models import Host
from controlplane.fleet.placement import Slot
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Membership, User
from tests import factories
from tests.bundles.world import PASSPHRASE
from tests.hosts import webcheck
from tests.hosts.harness import TestFleet
from tests.processes import api_process
from tests.provisioning.placed import (
    PLAYBOOK_VARS,
    SETUP,
    SKIP_TAGS,
    Placed,
    create_setup_job,
    run_to_success,
)

TARGET = "v4.6.0"  # the test Mastodon repository's newer release (tests/e2e/test_upgrade.py)


def _contract_and_token(engine: Engine, setup: Placed) -> tuple[str, str, str]:
    """A paid support contract for the server's organisation, and a token of
    its owner with the playbooks scope; (organisation id, token, web URL)."""
    with Session(engine) as session:
        server = session.get(Server, setup.server_id)
        assert server is not None
        assert server.slot is not None
        host = session.get(Host, server.host_id)
        assert host is not None
        support = AddOn(
            code="support", name="Support", price_cents=1, interval="year", per="organisation"
        )
        session.add(support)
        session.flush()
        session.add(
            AddOnOrder(
                addon_id=support.id,
                organisation_id=server.organisation_id,
                status="active",
                live_key=f"{support.id}:{server.organisation_id}",
                paid_at=utcnow(),
            )
        )
        owner = session.exec(
            select(User)
            .join(Membership)
            .where(
                Membership.organisation_id == server.organisation_id,
                Membership.role == OrgRole.owner,
            )
        ).one()
        _, token = factories.token(session, owner, {Scope.playbooks})
        web = f"http://127.0.0.1:{Slot.on(host, server.slot).web_port}"
        org = str(server.organisation_id)
        session.commit()
    return org, token, web


def _version(web: str) -> str:
    status, body = webcheck.get(web + "/api/v2/instance")
    assert status == 200, body
    return json.loads(body)["version"]


def _plain_ansible_playbook(folder: Path, passphrase: Path, key: Path, log: Path) -> int:
    """As a team runs it: its own SSH key and the test hosts' extras on the
    command line, the vault passphrase from a file. Only the venv's bin/ is
    on PATH (for ansible-playbook); no PYTHONPATH, cwd the bundle."""
    bin_dir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(log.parent),
        "LANG": "C.UTF-8",
        "ANSIBLE_NOCOLOR": "true",
        "ANSIBLE_LOCAL_TEMP": str(log.parent / "ansible-tmp"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(log.parent / "cp"),
    }
    command = [
        f"{bin_dir}/ansible-playbook",
        "-i",
        "inventory",
        "upgrade.yml",
        "--vault-password-file",
        str(passphrase),
        "--private-key",
        str(key),
        "--skip-tags",
        ",".join(SKIP_TAGS),
        "-e",
        json.dumps({**PLAYBOOK_VARS, "mastodon_version": TARGET}),
    ]
    with log.open("w") as out:
        run = subprocess.run(
            command, cwd=folder, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=900
        )
    return run.returncode


@pytest.mark.hosts
@pytest.mark.slow
@pytest.mark.postgres
# Herd's own database plays no part in what lands on the host: one kind is enough.
@pytest.mark.parametrize("db_kind", ["postgresql"])
def test_a_bundle_upgrades_a_host_with_plain_ansible_playbook(
    db_kind: str,
    engine: Engine,
    client: TestClient,
    placed: tuple[Placed, TestFleet],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    setup, fleet = placed
    host = fleet["h1"]
    run_to_success(engine, create_setup_job(engine, setup), {"setup": SETUP})
    org, token, web = _contract_and_token(engine, setup)
    assert _version(web) == "4.5.1"

    passphrase = tmp_path / "vault-pass"
    passphrase.write_text(PASSPHRASE + "\n")
    passphrase.chmod(0o600)
    folder = tmp_path / "bundle"
    # Started after `placed` set the fleet's settings, which the bundle carries.
    with api_process() as base:
        monkeypatch.setenv("HERD_API_URL", base)
        monkeypatch.setenv("HERD_API_TOKEN", token)
        pulled = CliRunner().invoke(
            app,
            [
                "playbooks",
                "pull",
                org,
                "--out",
                str(folder),
                "--include-secrets",
                "--vault-passphrase-file",
                str(passphrase),
            ],
        )
        assert pulled.exit_code == 0, pulled.output

        log = tmp_path / "run" / "upgrade.log"
        log.parent.mkdir()
        code = _plain_ansible_playbook(folder, passphrase, host.files.private_key, log)
        output = log.read_text()
        assert code == 0, output[-4000:]
        assert "PLAY RECAP" in output
        # The secrets reached the host only through the vault file.
        assert PASSPHRASE not in output
        assert _version(web) == "4.6.0"
        home = host.path(f"/home/{Slot(setup.slot).unix_user}")
        assert json.loads((home / "herd" / "state.json").read_text())["version"] == TARGET

        reported = CliRunner().invoke(
            app,
            ["playbooks", "report", str(folder), "--playbook", "upgrade.yml", "--log", str(log)],
        )
        assert reported.exit_code == 0, reported.output

    listed = client.get("/api/v1/playbooks/reports", headers=setup.operator)
    assert listed.status_code == 200, listed.text
    (report,) = listed.json()["items"]
    assert (report["organisation_id"], report["playbook"], report["status"]) == (
        org,
        "upgrade.yml",
        "succeeded",
    )
    (recap,) = report["hosts"]
    assert recap["server_id"] == str(setup.server_id)
    assert recap["changed"] > 0
    assert recap["failed"] == 0
