"""Migrations run from empty to head and back on SQLite and PostgreSQL, and
agree with the models."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import inspect
from sqlalchemy.engine import make_url

from controlplane import migrate
from controlplane.db import make_engine
from tests.conftest import POSTGRES_SERVER_URL, _psycopg_dsn


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    name = f"herd_migrations_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_psycopg_dsn(POSTGRES_SERVER_URL), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(_psycopg_dsn(POSTGRES_SERVER_URL), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_check_downgrade_upgrade(empty_database: str) -> None:
    migrate.upgrade(empty_database)
    assert {"servers", "organisations", "audit_entries", "api_tokens"} <= _tables(empty_database)
    migrate.check(empty_database)
    migrate.downgrade(empty_database)
    assert _tables(empty_database) <= {"alembic_version"}
    migrate.upgrade(empty_database)
    migrate.check(empty_database)
