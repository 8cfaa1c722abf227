"""An organisation with a support contract and a placed server, and tokens
carrying the `playbooks` scope (see world.py)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from tests.bundles.world import ContractWorld, contract_world

# The server placed on test host h1, shared with tests/provisioning.
from tests.provisioning.conftest import placed  # noqa: F401


@pytest.fixture
def contract(engine: Engine) -> ContractWorld:
    return contract_world(engine)
