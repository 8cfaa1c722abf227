"""The end-to-end stack: API and workers as processes, test hosts over SSH.

On SQLite the workers use the embedded broker (the two-command default);
on PostgreSQL they use Redis, as a production deployment would.
"""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from controlplane.auth.roles import OrgRole, Scope, StaffRole
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from tests.conftest import POSTGRES_SERVER_URL, _psycopg_dsn
from tests.e2e.stack import Stack
from tests.factories import World, member, organisation, plan, token, user
from tests.hosts.mastodon_repo import MastodonRepo

VERSION = "v4.5.1"
# What the test hosts lack: packages (the stand-in replaces them), a public
# name for certbot, and a Redis of their own (the machine's serves them).
PLAYBOOK_VARS = {
    "mastodon_nginx_tls_mode": "self_signed",
    "mastodon_db_host": "127.0.0.1",
    "mastodon_database_admin_host": "127.0.0.1",
}
SKIP_TAGS = ["packages", "certbot", "redis"]


def small_world(engine: Engine) -> World:
    """One organisation's owner, one operator, one plan: nothing else for the
    workers to find."""
    world = World()
    with Session(engine, expire_on_commit=False) as session:
        org = organisation(session, "city")
        owner = member(session, org, OrgRole.owner, "owner@city.example-herd.org")
        operator = user(session, "ops@provider.example-herd.org", StaffRole.operator)
        world.tokens["owner"] = token(session, owner)[1]
        world.tokens["operator"] = token(session, operator, {Scope.read, Scope.write, Scope.staff})[
            1
        ]
        world.ids.update(org_a=org.id, plan=plan(session, "small").id)
        session.commit()
    return world


@pytest.fixture
def broker_url(db_kind: str) -> Iterator[str | None]:
    """On PostgreSQL a Redis database of the machine's (a fault test
    overrides this with a Redis of its own); on SQLite the embedded broker."""
    if db_kind != "postgresql":
        yield None
        return
    redis_db = random.randint(1, 15)
    redis.Redis(db=redis_db).flushdb()
    yield f"redis://127.0.0.1:6379/{redis_db}"
    redis.Redis(db=redis_db).flushdb()


@pytest.fixture
def short_backoffs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers started after this wait a fifth of production's retry
    backoffs: the stand-in answers at once, so a health gate meant to sit
    out a phased restart (about 80 s) only makes a failing release slow to
    call failed. Fault tests keep production's backoffs, which their
    outages are timed against."""
    monkeypatch.setenv("HERD_RETRY_BACKOFF_SCALE", "0.2")
    get_settings.cache_clear()


@pytest.fixture
def stack(
    request: pytest.FixtureRequest,
    db_kind: str,
    broker_url: str | None,
    engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    start_fleet,
    mastodon_repo: MastodonRepo,
) -> Iterator[Stack]:
    if broker_url is not None:
        monkeypatch.setenv("HERD_BROKER_URL", broker_url)
    for name, value in {
        "HERD_HEALTH_CHECK": "direct",
        "HERD_MASTODON_REPO_URL": mastodon_repo.url,
        "HERD_MASTODON_VERSION": VERSION,
        "HERD_PLAYBOOK_VARS": json.dumps(PLAYBOOK_VARS),
        "HERD_PLAYBOOK_SKIP_TAGS": json.dumps(SKIP_TAGS),
        # A killed worker's job is taken over within seconds, not minutes.
        "HERD_JOB_LEASE_SECONDS": "6",
        "HERD_RECONCILE_SECONDS": "2",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    world = small_world(engine)
    fleet = start_fleet(["h1"])
    logs = tmp_path / "logs"
    logs.mkdir()
    api = request.getfixturevalue("live_server")
    stack = Stack(api=api, world=world, fleet=fleet, logs=logs)
    try:
        yield stack
    finally:
        stack.stop()
        _drop_tenant_databases(engine)


def _drop_tenant_databases(engine: Engine) -> None:
    """The provision playbook made real databases and roles on this
    machine's PostgreSQL; leave it as it was."""
    with Session(engine) as session:
        servers = session.exec(select(Server)).all()
        names = [f"mastodon_{s.id.hex}" for s in servers]
        roles = {f"mastodon{s.slot}" for s in servers if s.slot is not None}
    with psycopg.connect(_psycopg_dsn(POSTGRES_SERVER_URL), autocommit=True) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in roles:
            # Another run may still own a database with it: then it stays.
            with contextlib.suppress(psycopg.Error):
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')
