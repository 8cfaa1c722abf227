"""What the host benchmarks share: a throwaway Herd on this machine's
services, set up as tests/e2e sets up its stack.

A database of its own on the PostgreSQL at HERD_TEST_POSTGRES_URL, migrated;
a Redis database as the broker; the fake Mastodon repository; Herd's settings
in the environment (so the API and worker processes the benchmark starts
inherit them); one organisation, owner and operator. On the way out the
database goes, with the tenant databases and roles the provision playbook
made for its servers, and the Redis database is emptied.

    with live_herd(HERD_RECONCILE_SECONDS="2") as herd:
        fleet = TestFleet(herd.root / "fleet", names, shared_paths=[herd.repo.path])
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from sqlalchemy.engine import Engine, make_url

from controlplane import migrate
from controlplane.db import dispose_engines, engine_for
from controlplane.settings import get_settings
from tests.e2e.conftest import PLAYBOOK_VARS, SKIP_TAGS, VERSION, small_world
from tests.factories import World
from tests.hosts.mastodon_repo import MastodonRepo, build_mastodon_repo

POSTGRES_SERVER_URL = os.environ.get(
    "HERD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@dataclass(frozen=True)
class LiveHerd:
    root: Path  # a temporary folder, removed on the way out
    url: str
    engine: Engine
    world: World
    repo: MastodonRepo


@contextlib.contextmanager
def live_herd(**settings: str) -> Iterator[LiveHerd]:
    """Set up as above; ``settings`` are more HERD_* variables."""
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp, _database() as url:
        root = Path(tmp)
        redis_db = random.randint(1, 15)
        repo = build_mastodon_repo(root / "mastodon.git")
        os.environ.update(
            HERD_DATABASE_URL=url,
            HERD_DATA_DIR=str(root / "data"),
            HERD_SECRET_KEY="bench-" + uuid.uuid4().hex,
            HERD_BROKER_URL=f"redis://127.0.0.1:6379/{redis_db}",
            HERD_HEALTH_CHECK="direct",
            HERD_MASTODON_REPO_URL=repo.url,
            HERD_MASTODON_VERSION=VERSION,
            HERD_PLAYBOOK_VARS=json.dumps(PLAYBOOK_VARS),
            HERD_PLAYBOOK_SKIP_TAGS=json.dumps(SKIP_TAGS),
            **settings,
        )
        get_settings.cache_clear()
        redis.Redis(db=redis_db).flushdb()
        try:
            migrate.upgrade(url)
            engine = engine_for(url)
            yield LiveHerd(root, url, engine, small_world(engine), repo)
        finally:
            redis.Redis(db=redis_db).flushdb()


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def _database() -> Iterator[str]:
    name = f"herd_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_dsn(POSTGRES_SERVER_URL), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(False)
    try:
        yield url
    finally:
        dispose_engines()
        _drop(name, url)


def _drop(name: str, url: str) -> None:
    """Herd's database, and the tenant databases and roles the provision
    playbook made on this machine's PostgreSQL for its servers."""
    with psycopg.connect(_dsn(POSTGRES_SERVER_URL), autocommit=True) as admin:
        tenants, roles = set(), set()
        with contextlib.suppress(psycopg.Error), psycopg.connect(_dsn(url)) as herd:
            for server_id, slot in herd.execute("SELECT id, slot FROM servers"):
                tenants.add(f"mastodon_{uuid.UUID(str(server_id)).hex}")
                if slot is not None:
                    roles.add(f"mastodon{slot}")
        for tenant in sorted(tenants):
            admin.execute(f'DROP DATABASE IF EXISTS "{tenant}" WITH (FORCE)')
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for role in sorted(roles):
            # Another run may still own a database with it: then it stays.
            with contextlib.suppress(psycopg.Error):
                admin.execute(f'DROP ROLE IF EXISTS "{role}"')
