"""`herd playbooks pull / verify / report` against Herd's API in a real
process, on both databases."""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from controlplane.bundles.signing import public_pem
from controlplane.bundles.vault import decrypt_vars
from controlplane.bundles.version import BUNDLE_VERSION
from controlplane.cli.main import app
from tests.bundles.world import PASSPHRASE, ContractWorld

RECAP = """PLAY [Upgrade a Mastodon server] ***

PLAY RECAP *********************************************************************
{host} : ok=30   changed=4    unreachable=0    failed=0    skipped=9    rescued=0    ignored=0
"""


@pytest.fixture
def herd(
    contract: ContractWorld, live_server: str, monkeypatch: pytest.MonkeyPatch
) -> ContractWorld:
    monkeypatch.setenv("HERD_API_URL", live_server)
    monkeypatch.setenv("HERD_API_TOKEN", contract.tokens["playbooks_only"])
    return contract


def _herd(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def test_pull_verifies_unpacks_and_verify_catches_any_change(
    herd: ContractWorld, tmp_path: Path, live_server: str
) -> None:
    out = tmp_path / "bundle"
    code, output = _herd("playbooks", "pull", herd.org, "--out", out)
    assert code == 0, output
    assert f"verified bundle {BUNDLE_VERSION} for org-a" in output
    assert (out / "upgrade.yml").is_file()
    assert (out / "inventory" / "host_vars" / herd.domain / "main.yml").is_file()

    code, output = _herd("playbooks", "verify", out)
    assert (code, "verified" in output) == (0, True), output
    # Pinned: the key Herd publishes, written out by the team once.
    published = httpx.get(f"{live_server}/api/v1/playbooks/signing-key").json()
    pinned = tmp_path / "herd.pub"
    pinned.write_text(published["public_key_pem"])
    assert _herd("playbooks", "verify", out, "--public-key", pinned)[0] == 0
    stranger = tmp_path / "stranger.pub"
    stranger.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    code, output = _herd("playbooks", "verify", out, "--public-key", stranger)
    assert code == 1
    assert "signature does not verify" in output

    # One byte changed in a role's task file.
    task = out / "roles" / "mastodon_source" / "tasks" / "main.yml"
    original = task.read_bytes()
    task.write_bytes(original.replace(b"name:", b"name;", 1))
    code, output = _herd("playbooks", "verify", out)
    assert code == 1
    assert "roles/mastodon_source/tasks/main.yml: checksum differs" in output
    task.write_bytes(original)
    (out / "extra.yml").write_text("- hosts: all\n")
    code, output = _herd("playbooks", "verify", out)
    assert (code, "extra.yml: not listed in the manifest" in output) == (1, True), output


def test_pull_with_secrets_and_report_a_run(
    herd: ContractWorld, tmp_path: Path, live_server: str
) -> None:
    passphrase = tmp_path / "vault-pass"
    passphrase.write_text(PASSPHRASE + "\n")
    out = tmp_path / "bundle"
    code, output = _herd(
        "playbooks",
        "pull",
        herd.org,
        "--out",
        out,
        "--include-secrets",
        "--vault-passphrase-file",
        passphrase,
    )
    assert code == 0, output
    vault = out / "inventory" / "host_vars" / herd.domain / "vault.yml"
    assert stat.S_IMODE(vault.stat().st_mode) == 0o600
    assert (
        decrypt_vars(vault.read_bytes(), PASSPHRASE)["mastodon_db_password"]
        == (herd.secrets["DB_PASS"])
    )

    log = tmp_path / "run.log"
    log.write_text(RECAP.format(host=herd.domain))
    code, output = _herd("playbooks", "report", out, "--playbook", "upgrade.yml", "--log", log)
    assert code == 0, output
    listed = httpx.get(
        f"{live_server}/api/v1/organisations/{herd.org}/playbooks/reports",
        headers=herd.headers("owner"),
    ).json()["items"]
    assert [(r["playbook"], r["status"], r["bundle_version"]) for r in listed] == [
        ("upgrade.yml", "succeeded", BUNDLE_VERSION)
    ]
    assert listed[0]["hosts"][0]["changed"] == 4
    assert listed[0]["finished_at"] is not None


def test_a_refused_pull_unpacks_nothing(
    herd: ContractWorld, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERD_API_TOKEN", herd.tokens["viewer_pb"])
    out = tmp_path / "bundle"
    code, output = _herd("playbooks", "pull", herd.org, "--out", out)
    assert code == 1
    assert "urn:herd:problem:forbidden" in output
    assert not out.exists() or not any(out.iterdir())
