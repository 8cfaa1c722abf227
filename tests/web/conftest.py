from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from controlplane.settings import get_settings
from tests.factories import World, build_world


@pytest.fixture
def web_env(herd_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # Tests talk plain http to 127.0.0.1 (or TestClient's testserver), where
    # a client keeps no Secure cookie.
    monkeypatch.setenv("HERD_WEB_COOKIE_SECURE", "false")
    get_settings.cache_clear()
    return herd_env


@pytest.fixture
def web(web_env: Path) -> Iterator[TestClient]:
    from controlplane.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)
