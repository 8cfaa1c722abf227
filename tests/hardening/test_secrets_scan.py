"""No secret Herd handles is left anywhere in clear.

The test drives Herd through the flows that handle secrets, through its API
and its real job runner: API tokens and an invitation, a host's SSH key, an
organisation's SSO (Keycloak stand-in: the service client's secret, the
server's client secret, the organisation's upstream IdP secret), a server's
provisioning (Mastodon's secrets, its S3 key pair made in moto, Herd's own
S3 keys), Stripe's payment of the order (webhook deliveries signed with the
webhook secret; the API key in the environment, the gateway a stand-in).
The playbook runs are ansible-runner stand-ins that echo every variable
they were given into their task output, the worst a playbook could do.
Then it scans, for every secret: every column of every table, the captured
logs, the job events, the API's answers after creation, and every file
under Herd's data directory.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.auth.roles import StaffRole
from controlplane.billing import catalogue, stripe_client, work
from controlplane.billing.settings import get_billing_settings
from controlplane.db import unit_of_work
from controlplane.identity.keycloak import get_identity
from controlplane.jobs.models import FINISHED, Job, JobState
from controlplane.moderation.sync import moderator_secrets
from controlplane.servers import secrets as server_secrets
from controlplane.settings import get_settings
from controlplane.storage import get_storage_settings, grant_secrets
from provisioning import ansible, health, pipeline
from provisioning.registry import pipelines, redactor_for
from tests import factories
from tests.billing import stripe_events as se
from tests.conftest import TEST_SECRET_KEY
from tests.factories import build_world
from tests.identity.standin import SERVICE_CLIENT, SERVICE_SECRET, KeycloakStandIn
from tests.identity.test_brokering import publish_oidc
from tests.moderation.staffing import make_team, order_moderation
from tests.moto import REGION, Moto

STRIPE_API_KEY = "sk_test_herd_scan_" + uuid.uuid4().hex
UPSTREAM_SECRET = "upstream-idp-secret-" + uuid.uuid4().hex


def _ssh_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()


def _key_body(pem: str) -> str:
    """The key's base64 lines without the armour (the part that is secret)."""
    return "".join(line for line in pem.splitlines() if not line.startswith("-----"))


class EchoingAnsible:
    """ansible_runner.run, as far as Herd can tell: one task per variable
    whose output prints the variable's value, then the play's stats."""

    def __init__(self) -> None:
        self.runs: list[str] = []
        self.sent: list[tuple[str, str]] = []  # billing's tasks, run by _work
        self.keys_seen = 0

    def run(self, **kwargs: Any) -> Any:
        self.runs.append(kwargs["playbook"])
        handler: Callable[[dict[str, Any]], bool] = kwargs["event_handler"]
        private = Path(kwargs["private_data_dir"])
        assert private.is_dir()
        keys = sorted((private / "keys").glob("*.key"))
        self.keys_seen += len(keys)
        for name, value in sorted(kwargs["extravars"].items()):
            handler(
                {
                    "event": "runner_on_ok",
                    "event_data": {
                        "host": "h1",
                        "play": "Provision",
                        "task": f"Show {name}",
                        "task_action": "ansible.builtin.debug",
                        "duration": 0.01,
                        "res": {"changed": False, "msg": f"{name}={value}", "stdout": str(value)},
                    },
                }
            )
        for key in keys:  # a task that cats the SSH key it was given
            handler(
                {
                    "event": "runner_on_ok",
                    "event_data": {
                        "host": "h1",
                        "task": "Show the key",
                        "res": {"stdout": key.read_text()},
                    },
                }
            )
        handler({"event": "playbook_on_stats", "event_data": {"ok": {"h1": 1}}})
        return SimpleNamespace(status="successful", rc=0)


@pytest.fixture
def keycloak() -> Iterator[KeycloakStandIn]:
    with KeycloakStandIn() as standin:
        yield standin


@pytest.fixture
def configured(
    herd_env: Path, moto: Moto, keycloak: KeycloakStandIn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[EchoingAnsible]:
    """Every external secret Herd takes from its environment, set."""
    for name, value in {
        "HERD_S3_ENDPOINT_URL": moto.url,
        "HERD_S3_REGION": REGION,
        "HERD_S3_ACCESS_KEY_ID": moto.admin_key_id,
        "HERD_S3_SECRET_ACCESS_KEY": moto.admin_secret,
        "HERD_S3_BUCKET_PREFIX": "scan-",
        "HERD_S3_MAX_ATTEMPTS": "1",
        "HERD_KEYCLOAK_URL": keycloak.url,
        "HERD_KEYCLOAK_PUBLIC_URL": "https://sso.provider.test",
        "HERD_KEYCLOAK_ADMIN_CLIENT_ID": SERVICE_CLIENT,
        "HERD_KEYCLOAK_ADMIN_CLIENT_SECRET": SERVICE_SECRET,
        "HERD_STRIPE_WEBHOOK_SECRET": se.WEBHOOK_SECRET,
        "HERD_STRIPE_API_KEY": STRIPE_API_KEY,
        "HERD_HEALTH_CHECK": "direct",
    }.items():
        monkeypatch.setenv(name, value)
    caches = (get_settings, get_storage_settings, get_billing_settings, get_identity)
    for cache in caches:
        cache.cache_clear()
    stripe_client.use_gateway(se.FakeGateway())
    echo = EchoingAnsible()
    monkeypatch.setattr(ansible.ansible_runner, "run", echo.run)
    monkeypatch.setattr(work, "_send", lambda task, arg: echo.sent.append((task, arg)))
    monkeypatch.setattr(
        health, "check", lambda *_a, **_k: health.HealthReport(True, "4.5.2", "healthy")
    )
    yield echo
    stripe_client.use_gateway(None)
    for cache in caches:
        cache.cache_clear()


def _work(engine: Engine, sent: list[tuple[str, str]]) -> None:
    """Billing's tasks, as its worker would run them."""
    while sent:
        task, argument = sent.pop(0)
        if task == work.PROCESS_EVENT_TASK:
            work.process_event(engine, argument)
        elif task == work.SUBSCRIBE_TASK:
            work.subscribe(engine, uuid.UUID(argument))


def _run_jobs(engine: Engine, server_id: uuid.UUID) -> list[uuid.UUID]:
    """What the workers would do: the server's unfinished jobs, to their end,
    here; returns every job of the server."""
    with Session(engine) as session:
        jobs = session.exec(select(Job).where(Job.server_id == server_id)).all()
        ids = [job.id for job in jobs]
        waiting = [job.id for job in jobs if job.state not in FINISHED]
    for job_id in waiting:
        outcome = pipeline.run_job(
            engine,
            job_id,
            pipelines(),
            lease_seconds=30,
            redactor_for=redactor_for,
            owner="scan-worker",
        )
        assert outcome.state == JobState.succeeded, outcome
    return ids


def _database_text(engine: Engine) -> str:
    """Every value of every column of every table, as text (bytes too)."""
    parts: list[str] = []
    with engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        parts.append(bytes(value).decode("latin-1"))
                    elif value is not None:
                        parts.append(str(value))
    return "\n".join(parts)


def _files_text(root: Path) -> dict[str, str]:
    return {
        str(path): path.read_bytes().decode("latin-1") for path in root.rglob("*") if path.is_file()
    }


def test_no_secret_is_left_in_clear(
    configured: EchoingAnsible,
    client: TestClient,
    engine: Engine,
    herd_env: Path,
    keycloak: KeycloakStandIn,
    moto: Moto,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    world = build_world(engine)
    with unit_of_work(engine) as session:
        catalogue.sync(session)  # the plans' prices in (the stand-in for) Stripe
    staff, owner = world.headers("staff_admin"), world.headers("owner")
    org = world.ids["org"]
    ssh_key = _ssh_key()

    # -- the flows ---------------------------------------------------------------------
    token = client.post("/api/v1/tokens", json={"name": "ci", "scopes": ["read"]}, headers=owner)
    assert token.status_code == 201, token.text
    invitation = client.post(
        f"/api/v1/organisations/{org}/invitations",
        json={"email": "scan@example-herd.org", "role": "viewer"},
        headers=owner,
    )
    assert invitation.status_code == 201, invitation.text
    host = client.post(
        "/api/v1/hosts",
        json={"name": "scan-host", "address": "127.0.0.1", "ssh_private_key": ssh_key},
        headers=staff,
    )
    assert host.status_code == 201, host.text
    # The world's hosts get it too, wherever placement puts the server.
    for name in ("host", "empty_host"):
        keyed = client.patch(
            f"/api/v1/hosts/{world.ids[name]}", json={"ssh_private_key": ssh_key}, headers=staff
        )
        assert keyed.status_code == 200, keyed.text
    sso = client.put(
        f"/api/v1/organisations/{org}/sso",
        json={
            "enabled": True,
            "upstream": {
                "kind": "oidc",
                "issuer": publish_oidc(keycloak, "scan"),
                "client_id": "herd",
                "client_secret": UPSTREAM_SECRET,
            },
        },
        headers=owner,
    )
    assert sso.status_code == 200, sso.text
    order = client.post(
        f"/api/v1/organisations/{org}/servers",
        json={"domain": "scan.org-a-herd.social", "plan": "small", "title": "Scan"},
        headers=owner,
    )
    assert order.status_code == 201, order.text
    server_id = order.json()["id"]
    # Billing is on: the order waits for Stripe to say it is paid.
    _work(engine, configured.sent)
    customer = client.get(f"/api/v1/organisations/{org}/billing", headers=owner).json()[
        "stripe_customer_id"
    ]
    for event in (
        se.event(
            "invoice.paid", se.invoice("in_scan", customer, "sub_scan", "paid", server_id=server_id)
        ),
        se.event(
            "checkout.session.completed",
            se.checkout_completed("cs_scan", customer, "sub_scan", server_id),
        ),
    ):
        payload, signature = se.signed(event)
        delivered = client.post(se.WEBHOOK_PATH, content=payload, headers=signature)
        assert delivered.status_code == 200, delivered.text
    _work(engine, configured.sent)
    job_ids = _run_jobs(engine, uuid.UUID(server_id))
    assert job_ids, "the payment started provisioning"
    with Session(engine) as session:
        mastodon = server_secrets.load(session, uuid.UUID(server_id))
        s3_keys = grant_secrets(session, uuid.UUID(server_id))
    assert mastodon is not None
    assert configured.runs, "the playbooks ran"
    assert configured.keys_seen, "with the host's SSH key"
    assert s3_keys, "the server got an S3 key of its own"

    # Moderation staffing: a moderator's admin token and the report webhook's
    # secret, both handed to the (echoing) moderators playbook.
    order_moderation(engine, uuid.UUID(server_id))
    with Session(engine) as session:
        moderator = factories.user(session, staff_role=StaffRole.operator)
        session.commit()
        moderator_id = moderator.id
    team = make_team(client, staff, [(moderator_id, "scan_mod")])
    assigned = client.put(
        f"/api/v1/servers/{server_id}/moderation",
        headers=staff,
        json={"team_id": team["id"], "response_hours": 4},
    )
    assert assigned.status_code == 200, assigned.text
    job_ids = _run_jobs(engine, uuid.UUID(server_id))
    assert "moderators.yml" in configured.runs
    with Session(engine) as session:
        moderation_secrets = moderator_secrets(session, uuid.UUID(server_id))
    assert len(moderation_secrets) == 2, "a moderator token and the webhook secret"

    realm_secrets = [
        secret
        for realm in keycloak.realms.values()
        for client_row in realm.clients.values()
        if (secret := realm.secret_of(client_row["clientId"])) is not None
    ]
    assert realm_secrets, "the server got an SSO client with a secret"

    secrets: dict[str, str] = {
        "new API token": token.json()["token"],
        "invitation token": invitation.json()["token"],
        "SSH private key": _key_body(ssh_key),
        "S3 admin secret key": moto.admin_secret,
        "Stripe API key": STRIPE_API_KEY,
        "Stripe webhook secret": se.WEBHOOK_SECRET,
        "Keycloak service client secret": SERVICE_SECRET,
        "upstream IdP client secret": UPSTREAM_SECRET,
        "Herd's secret key": TEST_SECRET_KEY,
        **{f"world's {name} token": value for name, value in world.tokens.items()},
        **{f"Mastodon {name}": value for name, value in mastodon.items() if "PUBLIC" not in name},
        **{f"server S3 secret key {n}": value for n, value in enumerate(s3_keys)},
        **{f"server SSO client secret {n}": value for n, value in enumerate(realm_secrets)},
        **{f"moderation secret {n}": value for n, value in enumerate(moderation_secrets)},
    }

    # -- where they must not be ----------------------------------------------------------
    answers = [
        client.get(path, headers=staff).text
        for path in (
            "/api/v1/me",
            "/api/v1/tokens",
            f"/api/v1/organisations/{org}/tokens",
            f"/api/v1/organisations/{org}/invitations",
            f"/api/v1/hosts/{host.json()['id']}",
            "/api/v1/hosts",
            f"/api/v1/organisations/{org}/sso",
            f"/api/v1/servers/{server_id}",
            f"/api/v1/servers/{server_id}/preview",
            f"/api/v1/servers/{server_id}/jobs",
            f"/api/v1/servers/{server_id}/moderation",
            f"/api/v1/organisations/{org}/audit",
            "/api/v1/audit",
            "/api/v1/jobs",
        )
    ]
    answers += [client.get(f"/api/v1/jobs/{j}/events", headers=staff).text for j in job_ids]
    answers += [client.get(f"/api/v1/jobs/{j}", headers=staff).text for j in job_ids]
    assert any("Show mastodon_db_password" in answer for answer in answers), "events read"
    places = {
        "the database": _database_text(engine),
        "the logs": "\n".join(
            f"{r.getMessage()} {r.exc_text or ''} {r.args!r}" for r in caplog.records
        ),
        "the API's answers": "\n".join(answers),
        **{f"file {name}": body for name, body in _files_text(herd_env).items()},
    }
    found = [
        f"{secret_name} in {place}"
        for secret_name, secret in secrets.items()
        for place, haystack in places.items()
        if secret in haystack
    ]
    leaking = [
        f"{r.name}: {r.getMessage()[:300]}"
        for r in caplog.records
        if any(
            secret in f"{r.getMessage()} {r.exc_text or ''} {r.args!r}"
            for secret in secrets.values()
        )
    ]
    assert found == [], leaking
