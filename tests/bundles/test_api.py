"""Pulling a bundle and reporting runs through the API, on both databases."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleError
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.audit.models import AuditEntry
from controlplane.bundles.manifest import verify
from controlplane.bundles.signing import load_public_key
from controlplane.bundles.vault import decrypt_vars
from controlplane.bundles.version import BUNDLE_VERSION, changelog
from tests.bundles.world import PASSPHRASE, ContractWorld, untar
from tests.factories import fingerprint


def _pull(client: TestClient, contract: ContractWorld, who: str = "owner_pb", **body: object):
    return client.post(
        f"/api/v1/organisations/{contract.org}/playbooks/bundle",
        headers=contract.headers(who),
        json=body or None,
    )


def _key(client: TestClient):
    answer = client.get("/api/v1/playbooks/signing-key")
    assert answer.status_code == 200, answer.text
    return load_public_key(answer.json()["public_key_pem"]), answer.json()["fingerprint"]


def _actions(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.action).startswith("playbooks."))
                .order_by(col(AuditEntry.id))
            ).all()
        )


def test_a_pulled_bundle_verifies_and_holds_the_servers_inventory(
    client: TestClient, engine: Engine, contract: ContractWorld, herd_env: Path
) -> None:
    answer = _pull(client, contract)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/gzip"
    assert answer.headers["x-herd-bundle-version"] == BUNDLE_VERSION
    files = untar(answer.content)
    key, fp = _key(client)
    verified = verify(files, key)
    assert verified.fingerprint == fp
    manifest = verified.manifest
    assert manifest["bundle_version"] == BUNDLE_VERSION
    assert manifest["changelog"] == changelog()
    # The catalogue is empty: the release new servers get.
    assert manifest["mastodon_releases"] == ["v4.5.2"]
    assert manifest["secrets"] == "left-out"
    assert [s["host"] for s in manifest["servers"]] == [contract.domain]
    # Playbooks, roles and templates as in the repository.
    assert files["upgrade.yml"] == Path("playbooks/upgrade.yml").read_bytes()
    assert "roles/mastodon_source/tasks/main.yml" in files
    assert "templates/home/mastodon/live/.env.production.j2" in files
    assert set(manifest["files"]) == set(files) - {"manifest.json", "manifest.json.sig"}

    inventory = yaml.safe_load(files["inventory/hosts.yml"])
    host = inventory["all"]["children"]["mastodon"]["hosts"][contract.domain]
    assert (host["ansible_host"], host["ansible_port"], host["ansible_user"]) == (
        "127.0.0.1",
        2222,
        "root",
    )
    variables = yaml.safe_load(files[f"inventory/host_vars/{contract.domain}/main.yml"])
    assert variables["mastodon_local_domain"] == contract.domain
    assert variables["mastodon_user"] == "mastodon0"
    assert variables["mastodon_version"] == "v4.5.1"
    # No secret: not the variables, not their values, anywhere in the bundle.
    assert "mastodon_secret_key_base" not in variables
    assert not any(name.endswith("/vault.yml") for name in files)
    everything = b"".join(files.values())
    for value in contract.secrets.values():
        assert value.encode() not in everything

    # Signing key: generated once, private to Herd.
    key_file = herd_env / "playbook-signing.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    (entry,) = _actions(engine)
    assert (entry.action, entry.organisation_id) == ("playbooks.pull", contract.world.ids["org"])
    assert entry.details["secrets"] is False
    assert entry.details["servers"] == [contract.domain]

    # Without secrets the same state gives the same bytes.
    assert _pull(client, contract).content == answer.content


def test_secrets_come_only_vault_encrypted_and_the_passphrase_is_kept_nowhere(
    client: TestClient,
    engine: Engine,
    contract: ContractWorld,
    herd_env: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    answer = _pull(client, contract, include_secrets=True, vault_passphrase=PASSPHRASE)
    assert answer.status_code == 200, answer.text
    files = untar(answer.content)
    verify(files, _key(client)[0])
    sealed = files[f"inventory/host_vars/{contract.domain}/vault.yml"]
    assert sealed.startswith(b"$ANSIBLE_VAULT;1.1;AES256")
    secret = decrypt_vars(sealed, PASSPHRASE)
    assert secret["mastodon_secret_key_base"] == contract.secrets["SECRET_KEY_BASE"]
    assert secret["mastodon_db_password"] == contract.secrets["DB_PASS"]
    with pytest.raises(AnsibleError):
        decrypt_vars(sealed, "not the passphrase at all")
    plain = {name: data for name, data in files.items() if data is not sealed}
    for value in contract.secrets.values():
        assert all(value.encode() not in data for data in plain.values())
    manifest = json.loads(files["manifest.json"])
    assert manifest["secrets"] == "ansible-vault"

    # The passphrase: not in the database, the logs or Herd's data folder.
    assert PASSPHRASE not in json.dumps(fingerprint(engine))
    assert PASSPHRASE not in caplog.text
    for path in herd_env.rglob("*"):
        if path.is_file():
            assert PASSPHRASE.encode() not in path.read_bytes(), path
    assert _actions(engine)[-1].details["secrets"] is True


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"include_secrets": True}, "include_secrets needs a vault_passphrase"),
        ({"vault_passphrase": PASSPHRASE}, "only used with include_secrets"),
        ({"include_secrets": True, "vault_passphrase": "short"}, "at least 12"),
    ],
)
def test_a_passphrase_goes_with_secrets(
    client: TestClient, contract: ContractWorld, body: dict, problem: str
) -> None:
    answer = _pull(client, contract, **body)
    assert answer.status_code == 422
    assert problem in answer.text
    assert PASSPHRASE not in answer.text


@pytest.mark.parametrize(
    ("who", "status", "kind"),
    [
        # Organisation B has no support contract.
        ("outsider_pb", 404, "not-found"),
        # Everyday tokens of the owner (no playbooks scope).
        ("owner", 403, "insufficient-scope"),
        ("readonly", 403, "insufficient-scope"),
        ("viewer_pb", 403, "forbidden"),
        ("billing_pb", 403, "forbidden"),
        ("operator_pb", 403, "forbidden"),
        ("anonymous", 401, "unauthenticated"),
    ],
)
def test_who_may_not_pull(
    client: TestClient,
    engine: Engine,
    contract: ContractWorld,
    who: str,
    status: int,
    kind: str,
) -> None:
    before = fingerprint(engine)
    answer = _pull(client, contract, who)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == f"urn:herd:problem:{kind}"
    assert fingerprint(engine) == before, "a refused pull wrote something"


def test_without_a_contract_nothing_is_pulled(
    client: TestClient, engine: Engine, contract: ContractWorld
) -> None:
    before = fingerprint(engine)
    answer = client.post(
        f"/api/v1/organisations/{contract.world.ids['org_b']}/playbooks/bundle",
        headers=contract.headers("outsider_pb"),
    )
    assert answer.status_code == 403, answer.text
    assert answer.json()["type"] == "urn:herd:problem:no-support-contract"
    assert "support contract" in answer.json()["detail"]
    assert fingerprint(engine) == before


@pytest.mark.parametrize("who", ["playbooks_only", "admin_pb", "staff_admin_pb"])
def test_who_may_pull(client: TestClient, contract: ContractWorld, who: str) -> None:
    answer = _pull(client, contract, who)
    assert answer.status_code == 200, answer.text
    verify(untar(answer.content), _key(client)[0])


def _recap(contract: ContractWorld, failed: int = 0) -> dict:
    return {
        "playbook": "upgrade.yml",
        "status": "failed" if failed else "succeeded",
        "bundle_version": BUNDLE_VERSION,
        "started_at": "2026-12-01T10:00:00Z",
        "finished_at": "2026-12-01T10:04:00Z",
        "hosts": [
            {
                "host": contract.domain,
                "ok": 40,
                "changed": 7,
                "unreachable": 0,
                "failed": failed,
                "skipped": 12,
            },
            {
                "host": "elsewhere.example-herd.org",
                "ok": 1,
                "changed": 0,
                "unreachable": 1,
                "failed": 0,
                "skipped": 0,
            },
        ],
    }


def test_reports_are_stored_audited_and_listed(
    client: TestClient, engine: Engine, contract: ContractWorld
) -> None:
    url = f"/api/v1/organisations/{contract.org}/playbooks/reports"
    sent = client.post(url, headers=contract.headers("playbooks_only"), json=_recap(contract))
    assert sent.status_code == 201, sent.text
    report = sent.json()
    assert report["status"] == "succeeded"
    by_host = {h["host"]: h for h in report["hosts"]}
    # A host of the inventory is tied to its server; another is kept as sent.
    assert by_host[contract.domain]["server_id"] == str(contract.world.ids["server"])
    assert by_host[contract.domain]["changed"] == 7
    assert by_host["elsewhere.example-herd.org"]["server_id"] is None

    listed = client.get(url, headers=contract.headers("viewer"))
    assert listed.status_code == 200
    assert [r["id"] for r in listed.json()["items"]] == [report["id"]]
    fleet = client.get("/api/v1/playbooks/reports", headers=contract.headers("operator"))
    assert [r["id"] for r in fleet.json()["items"]] == [report["id"]]
    narrowed = client.get(
        "/api/v1/playbooks/reports",
        params={"organisation_id": str(contract.world.ids["org_b"])},
        headers=contract.headers("operator"),
    )
    assert narrowed.json()["items"] == []
    (entry,) = _actions(engine)
    assert (entry.action, entry.target_id) == ("playbooks.report", report["id"])
    assert entry.details["status"] == "succeeded"


def test_reports_need_the_scope_and_the_role(
    client: TestClient, engine: Engine, contract: ContractWorld
) -> None:
    url = f"/api/v1/organisations/{contract.org}/playbooks/reports"
    before = fingerprint(engine)
    for who, status in (("owner", 403), ("viewer_pb", 403), ("outsider_pb", 404)):
        answer = client.post(url, headers=contract.headers(who), json=_recap(contract))
        assert answer.status_code == status, (who, answer.text)
    bad = _recap(contract)
    bad["playbook"] = "../../etc/passwd"
    assert client.post(url, headers=contract.headers("owner_pb"), json=bad).status_code == 422
    assert fingerprint(engine) == before
    assert (
        client.get("/api/v1/playbooks/reports", headers=contract.headers("owner")).status_code
        == 403
    )
