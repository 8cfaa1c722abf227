from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from tests.factories import World, build_world


@pytest.fixture
def world(engine: Engine) -> World:
    return build_world(engine)
