"""Fixtures for the identity tests: a fresh Keycloak stand-in per test, and
Herd's real Keycloak client pointed at it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from controlplane.identity import Branding, IdentitySpace, KeycloakIdentity
from tests.identity.standin import KeycloakStandIn


@dataclass(frozen=True)
class Org:
    id: uuid.UUID
    slug: str
    name: str


@pytest.fixture(autouse=True)
def _no_keycloak_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings here come from the tests, never from the shell that runs them."""
    for name in list(os.environ):
        if name.startswith("HERD_KEYCLOAK_") or name == "HERD_ENVIRONMENT":
            monkeypatch.delenv(name)


@pytest.fixture
def keycloak() -> Iterator[KeycloakStandIn]:
    with KeycloakStandIn() as standin:
        yield standin


@pytest.fixture
def identity(keycloak: KeycloakStandIn) -> KeycloakIdentity:
    return KeycloakIdentity(keycloak.settings())


@pytest.fixture
def org() -> Org:
    return Org(uuid.uuid4(), "acme", "Acme Corporation")


@pytest.fixture
def space(identity: KeycloakIdentity, org: Org) -> IdentitySpace:
    return identity.ensure_space(organisation_id=org.id, slug=org.slug, branding=Branding(org.name))
