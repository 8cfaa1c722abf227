"""Test set-up: every database test runs on SQLite and on PostgreSQL.

PostgreSQL is the server on 127.0.0.1:5432 (HERD_TEST_POSTGRES_URL to
change it). The suite creates its own database and drops it at the end; if
the server is not there the suite fails rather than skipping, so CI cannot
pass by testing less.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from sqlmodel import SQLModel

import controlplane.models  # noqa: F401
from controlplane import migrate
from controlplane.db import dispose_engines, engine_for
from controlplane.ops import health
from controlplane.settings import get_settings
from tests.processes import api_process

# Test hosts (tests/hosts) and moto's S3 and IAM (tests/moto.py), for any folder.
pytest_plugins = ["tests.hosts.fixtures", "tests.moto", "tests.mailbox"]

POSTGRES_SERVER_URL = os.environ.get(
    "HERD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DB_KINDS = ("sqlite", "postgresql")
TEST_SECRET_KEY = "test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz"


def _psycopg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    name = f"herd_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        admin = psycopg.connect(
            _psycopg_dsn(POSTGRES_SERVER_URL), autocommit=True, connect_timeout=5
        )
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is needed at {POSTGRES_SERVER_URL} and did not answer ({exc}). "
            "Start it (see README) or set HERD_TEST_POSTGRES_URL.",
            pytrace=False,
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    migrate.upgrade(url)
    yield url
    dispose_engines()
    with psycopg.connect(_psycopg_dsn(POSTGRES_SERVER_URL), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "herd.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def _truncate_all(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} CASCADE"))


@pytest.fixture(params=DB_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.param


class Database:
    """The test's own database, and a way to put it back to empty."""

    def __init__(self, kind: str, url: str, template: Path | None = None) -> None:
        self.kind, self.url, self._template = kind, url, template

    def reset(self) -> None:
        engine = engine_for(self.url)
        if self.kind == "postgresql":
            _truncate_all(engine)
            return
        # The audit log's triggers refuse DELETE, so SQLite starts over from
        # the migrated template file instead.
        engine.dispose()
        path = Path(make_url(self.url).database or "")
        for suffix in ("-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)
        assert self._template is not None
        shutil.copyfile(self._template, path)


@pytest.fixture
def database(db_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if db_kind == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        db = Database("sqlite", f"sqlite:///{tmp_path / 'herd.sqlite3'}", template)
    else:
        db = Database("postgresql", request.getfixturevalue("postgres_url"))
    db.reset()
    yield db
    if db_kind == "sqlite":
        engine_for(db.url).dispose()


@pytest.fixture
def db_url(database: Database) -> str:
    return database.url


@pytest.fixture
def herd_env(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Point Herd's settings at this test's database and data directory."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HERD_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HERD_DATABASE_URL", db_url)
    monkeypatch.setenv("HERD_SECRET_KEY", TEST_SECRET_KEY)
    get_settings.cache_clear()
    health.reset_cache()
    yield data_dir
    get_settings.cache_clear()
    health.reset_cache()


@pytest.fixture
def engine(herd_env: Path, db_url: str) -> Engine:
    return engine_for(db_url)


@pytest.fixture
def client(herd_env: Path) -> Iterator[TestClient]:
    from controlplane.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def live_server(herd_env: Path) -> Iterator[str]:
    """Herd's API in a real uvicorn process on a free loopback port, on this
    test's database (for CLI commands and anything that needs real HTTP)."""
    with api_process() as base:
        yield base
