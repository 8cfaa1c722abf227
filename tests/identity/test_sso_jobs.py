"""Single sign-on through the API and the `sso` jobs, on both databases,
against the Keycloak stand-in, with the host faked (what sso.yml is given is
what the test reads). tests/provisioning/test_sso_on_host.py runs the real
playbook on a test host.

What an organisation owner checks: SSO on gives each running server exactly
one client and deploys its OIDC settings; rotation deploys a new secret that
Keycloak accepts and the old one no longer works; SSO off takes the settings
away and deletes the client; a worker that dies between creating the client
and recording its secret leaves no second client behind.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.audit.models import AuditEntry
from controlplane.crypto import secret_box
from controlplane.identity import get_identity
from controlplane.identity.models import OrganisationSso, ServerSso
from controlplane.jobs import service as jobs
from controlplane.jobs.models import Job, JobEvent, JobState
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from provisioning import pipeline
from provisioning.ansible import PlaybookResult, TaskEvent
from provisioning.registry import pipelines, redactor_for
from provisioning.steps import runs
from tests.factories import World, build_world, fingerprint
from tests.identity.standin import SERVICE_CLIENT, SERVICE_SECRET, KeycloakStandIn
from tests.identity.test_brokering import publish_oidc
from tests.identity.test_sso_clients import authenticates

REALM = "herd-org-a"


@pytest.fixture
def sso_env(monkeypatch: pytest.MonkeyPatch, keycloak: KeycloakStandIn) -> Iterator[None]:
    for name, value in {
        "HERD_KEYCLOAK_URL": keycloak.url,
        "HERD_KEYCLOAK_PUBLIC_URL": "https://sso.provider.test",
        "HERD_KEYCLOAK_ADMIN_CLIENT_ID": SERVICE_CLIENT,
        "HERD_KEYCLOAK_ADMIN_CLIENT_SECRET": SERVICE_SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    get_identity.cache_clear()
    yield
    get_identity.cache_clear()


class FakeHost:
    """sso.yml reduced to what it is given: the OIDC variables of each run."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []

    def run_playbook(
        self,
        playbook: str,
        _inventory: Any,
        variables: dict[str, Any],
        _workdir: Path,
        _ident: str,
        record: Callable[[TaskEvent], None],
        *_args: Any,
        **_kwargs: Any,
    ) -> PlaybookResult:
        assert playbook == "sso.yml"
        self.runs.append(
            {k: v for k, v in variables.items() if any(w in k for w in ("oidc", "omniauth", "sso"))}
        )
        # What the playbook's output looks like if a secret slipped into it.
        record(
            TaskEvent(
                host="h1",
                play="sso",
                task="Render .env.production",
                action="template",
                status="ok",
                changed=True,
                duration_ms=5,
                result={"echo": variables.get("mastodon_oidc_client_secret", "")},
            )
        )
        return PlaybookResult(status="successful", rc=0, hosts={}, seconds=0.1)

    @property
    def last(self) -> dict[str, Any]:
        return self.runs[-1]


@pytest.fixture
def fake_host(monkeypatch: pytest.MonkeyPatch) -> FakeHost:
    fake = FakeHost()
    monkeypatch.setattr(runs, "run_playbook", fake.run_playbook)
    return fake


@pytest.fixture
def world(engine: Engine) -> World:
    world = build_world(engine)
    with Session(engine) as session:
        server = session.get(Server, world.ids["server"])
        assert server is not None
        server.slot = 0  # placed, as an active server is
        session.add(server)
        session.commit()
    return world


def _run(engine: Engine, job_id: str | uuid.UUID) -> pipeline.RunOutcome:
    return pipeline.run_job(
        engine, uuid.UUID(str(job_id)), pipelines(), redactor_for=redactor_for, owner="worker-b"
    )


def _sso_on(client: TestClient, world: World, **changes: Any) -> dict[str, Any]:
    body = {"enabled": True, "display_name": "Sign in with Org A", **changes}
    answer = client.put(
        f"/api/v1/organisations/{world.ids['org']}/sso", json=body, headers=world.headers("owner")
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def _stored_secret(engine: Engine, server_id: uuid.UUID) -> str:
    with Session(engine) as session:
        row = session.get(ServerSso, server_id)
        assert row is not None
        return secret_box().decrypt(row.secret_encrypted)


@pytest.mark.usefixtures("sso_env")
def test_sso_on_rotate_and_off_through_the_api(
    client: TestClient,
    engine: Engine,
    world: World,
    keycloak: KeycloakStandIn,
    fake_host: FakeHost,
) -> None:
    server_id = world.ids["server"]
    answer = _sso_on(client, world, omniauth_only=True)
    # One job per running server: the active one, not the requested,
    # suspended or failed servers of the same organisation.
    assert len(answer["jobs"]) == 1
    assert answer["realm"] == REALM
    assert answer["issuer"] == f"https://sso.provider.test/realms/{REALM}"
    assert {s["domain"]: s["state"] for s in answer["servers"]}["live.org-a-herd.social"] == (
        "pending"
    )
    assert _run(engine, answer["jobs"][0]).state == JobState.succeeded

    client_id = f"mastodon-{server_id}"
    realm = keycloak.realm(REALM)
    assert next(iter(realm.clients.values()))["clientId"] == client_id
    assert len(realm.clients) == 1
    secret = _stored_secret(engine, server_id)
    assert authenticates(keycloak, REALM, client_id, secret)
    deployed = fake_host.last
    assert deployed["mastodon_oidc_enabled"] is True
    assert deployed["mastodon_oidc_issuer"] == f"https://sso.provider.test/realms/{REALM}"
    assert deployed["mastodon_oidc_client_id"] == client_id
    assert deployed["mastodon_oidc_client_secret"] == secret
    assert deployed["mastodon_oidc_display_name"] == "Sign in with Org A"
    assert deployed["mastodon_oidc_scope"] == ["openid", "profile", "email"]
    assert deployed["mastodon_oidc_redirect_uri"] == (
        "https://live.org-a-herd.social/auth/auth/openid_connect/callback"
    )
    assert deployed["mastodon_omniauth_only"] is True
    assert deployed["mastodon_one_click_sso_login"] is False
    shown = client.get(
        f"/api/v1/organisations/{world.ids['org']}/sso", headers=world.headers("viewer")
    ).json()
    assert {s["domain"]: (s["state"], s["client_id"]) for s in shown["servers"]}[
        "live.org-a-herd.social"
    ] == ("active", client_id)

    # Rotation: the new secret is deployed, Keycloak takes it, the old one is dead.
    started = client.post(f"/api/v1/servers/{server_id}/sso/rotate", headers=world.headers("admin"))
    assert started.status_code == 202, started.text
    assert started.json()["kind"] == "sso_rotate"
    assert _run(engine, started.json()["id"]).state == JobState.succeeded
    rotated = _stored_secret(engine, server_id)
    assert rotated != secret
    assert fake_host.last["mastodon_oidc_client_secret"] == rotated
    assert authenticates(keycloak, REALM, client_id, rotated)
    assert not authenticates(keycloak, REALM, client_id, secret)
    assert len(realm.clients) == 1

    # Off: the settings go first, then the client, then Herd's record of it.
    off = client.put(
        f"/api/v1/organisations/{world.ids['org']}/sso",
        json={"enabled": False},
        headers=world.headers("owner"),
    )
    assert off.status_code == 200, off.text
    assert _run(engine, off.json()["jobs"][0]).state == JobState.succeeded
    assert fake_host.last == {"mastodon_oidc_enabled": False}
    assert realm.clients == {}
    with Session(engine) as session:
        assert session.get(ServerSso, server_id) is None
        actions = session.exec(
            select(AuditEntry.action).where(AuditEntry.organisation_id == world.ids["org"])
        ).all()
        # No job event holds a secret, though the fake playbook echoed one.
        events = " ".join(str(e.result) for e in session.exec(select(JobEvent)).all())
    assert actions.count("organisation.sso_updated") == 2
    assert "server.sso_secret_rotation" in actions
    assert secret not in events
    assert rotated not in events
    assert "echo" in events


@pytest.mark.usefixtures("sso_env")
def test_a_worker_killed_before_the_secret_is_stored_leaves_one_client(
    client: TestClient,
    engine: Engine,
    world: World,
    keycloak: KeycloakStandIn,
    fake_host: FakeHost,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answer = _sso_on(client, world)
    job_id = uuid.UUID(answer["jobs"][0])
    identity = get_identity()
    real_secret = identity.client_secret

    def read_then_die(*args: Any, **kwargs: Any) -> str:
        # The client exists in Keycloak and its secret was read; the worker
        # process dies (SIGKILL) before Herd has recorded it.
        real_secret(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(identity, "client_secret", read_then_die)
    with pytest.raises(KeyboardInterrupt):
        _run(engine, job_id)
    realm = keycloak.realm(REALM)
    assert len(realm.clients) == 1
    with Session(engine) as session:
        assert session.get(ServerSso, world.ids["server"]) is None
        # The dead worker's lease runs out; the reconciler hands the job on.
        session.execute(update(Job).where(col(Job.id) == job_id).values(lease_expires_at=utcnow()))
        session.commit()

    monkeypatch.setattr(identity, "client_secret", real_secret)
    assert _run(engine, job_id).state == JobState.succeeded
    assert len(realm.clients) == 1
    client_id = f"mastodon-{world.ids['server']}"
    assert authenticates(keycloak, REALM, client_id, _stored_secret(engine, world.ids["server"]))
    assert fake_host.last["mastodon_oidc_client_id"] == client_id


def test_sso_cannot_be_switched_on_without_keycloak(
    client: TestClient, engine: Engine, world: World
) -> None:
    before = fingerprint(engine)
    answer = client.put(
        f"/api/v1/organisations/{world.ids['org']}/sso",
        json={"enabled": True},
        headers=world.headers("owner"),
    )
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:herd:problem:sso-not-available"
    assert fingerprint(engine) == before


@pytest.mark.usefixtures("sso_env")
@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"enabled": True, "one_click_sso_login": True}, "omniauth_only"),
        (
            {"enabled": True, "upstream": {"kind": "oidc", "issuer": "https://idp.example"}},
            "client_id",
        ),
        (
            {
                "enabled": True,
                "upstream": {"kind": "oidc", "issuer": "https://idp.example", "client_id": "x"},
            },
            "client_secret",
        ),
        ({"enabled": True, "upstream": {"kind": "saml"}}, "metadata_url"),
        ({"enabled": True, "upstream": {"kind": "ldap"}}, "kind"),
        ({"enabled": True, "display_name": "two\nlines"}, "display_name"),
        ({"enabled": "yes please"}, "enabled"),
    ],
)
def test_bad_sso_settings_are_refused_and_change_nothing(
    client: TestClient, engine: Engine, world: World, body: dict[str, Any], why: str
) -> None:
    before = fingerprint(engine)
    answer = client.put(
        f"/api/v1/organisations/{world.ids['org']}/sso", json=body, headers=world.headers("owner")
    )
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert why in answer.text
    assert fingerprint(engine) == before


@pytest.mark.usefixtures("sso_env")
def test_the_organisations_idp_is_brokered_and_its_secret_kept_encrypted(
    client: TestClient, engine: Engine, world: World, keycloak: KeycloakStandIn, fake_host: FakeHost
) -> None:
    upstream = {
        "kind": "oidc",
        "issuer": publish_oidc(keycloak, "city"),
        "client_id": "keycloak-at-city",
        "client_secret": "city-idp-secret-value-123",
    }
    answer = _sso_on(client, world, upstream=upstream)
    assert answer["upstream_has_client_secret"] is True
    assert "city-idp-secret-value-123" not in str(answer)
    assert answer["broker_redirect_uri"] == (
        f"https://sso.provider.test/realms/{REALM}/broker/idp/endpoint"
    )
    assert _run(engine, answer["jobs"][0]).state == JobState.succeeded
    idp = keycloak.realm(REALM).idps["idp"]
    assert idp["config"]["clientId"] == "keycloak-at-city"
    assert idp["config"]["clientSecret"] == "city-idp-secret-value-123"
    with Session(engine) as session:
        row = session.get(OrganisationSso, world.ids["org"])
        assert row is not None
        assert row.upstream_secret_encrypted
        assert "city-idp-secret-value-123" not in str(row.upstream)
        assert "city-idp-secret-value-123" not in row.upstream_secret_encrypted

    # Changing the button's label keeps the stored IdP secret.
    again = _sso_on(
        client, world, display_name="Org A login", upstream={**upstream, "client_secret": None}
    )
    assert again["upstream_has_client_secret"] is True


@pytest.mark.usefixtures("sso_env")
def test_rotation_needs_sso_and_the_right_role(
    client: TestClient, engine: Engine, world: World, fake_host: FakeHost
) -> None:
    server_id = world.ids["server"]
    url = f"/api/v1/servers/{server_id}/sso/rotate"
    assert client.post(url, headers=world.headers("owner")).json()["type"] == (
        "urn:herd:problem:sso-not-configured"
    )
    answer = _sso_on(client, world)
    _run(engine, answer["jobs"][0])
    assert client.post(url, headers=world.headers("viewer")).status_code == 403
    assert client.post(url, headers=world.headers("outsider")).status_code == 404
    with Session(engine) as session:
        server = session.get(Server, server_id)
        assert server is not None
        server.state = ServerState.suspended
        session.add(server)
        session.commit()
    assert client.post(url, headers=world.headers("owner")).status_code == 409


@pytest.mark.usefixtures("sso_env")
def test_deprovisioning_removes_the_client_whatever_the_organisation_chose(
    client: TestClient, engine: Engine, world: World, keycloak: KeycloakStandIn, fake_host: FakeHost
) -> None:
    from provisioning.steps.billing import DEPROVISION
    from provisioning.steps.identity import REMOVE_IDENTITY

    assert REMOVE_IDENTITY in DEPROVISION.steps
    answer = _sso_on(client, world)
    assert _run(engine, answer["jobs"][0]).state == JobState.succeeded
    assert len(keycloak.realm(REALM).clients) == 1
    with Session(engine) as session:
        server = session.get(Server, world.ids["server"])
        assert server is not None
        server.state = ServerState.deprovisioning
        session.add(server)
        job_id = jobs.create_job(session, "remove-identity", ["remove_identity"], server.id).id
        session.info.clear()  # no broker here: the test runs the job itself
        session.commit()
    kinds = {"remove-identity": pipeline.Pipeline("remove-identity", (REMOVE_IDENTITY,))}
    outcome = pipeline.run_job(engine, job_id, kinds, redactor_for=redactor_for)
    assert outcome.state == JobState.succeeded
    assert keycloak.realm(REALM).clients == {}
    with Session(engine) as session:
        assert session.get(ServerSso, world.ids["server"]) is None
    # SSO stays on for the organisation's other servers.
    shown = client.get(
        f"/api/v1/organisations/{world.ids['org']}/sso", headers=world.headers("owner")
    ).json()
    assert shown["enabled"] is True
