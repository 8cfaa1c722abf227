"""pytest fixtures for test hosts; tests/hosts/conftest.py exposes them.

Other test folders can use them with ``from tests.hosts.fixtures import *``
in their conftest.py (names: mastodon_repo, start_fleet, fleet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from .harness import TestFleet
from .mastodon_repo import MastodonRepo, build_mastodon_repo

__all__ = ["fleet", "mastodon_repo", "start_fleet"]

StartFleet = Callable[..., TestFleet]


@pytest.fixture(scope="session")
def mastodon_repo(tmp_path_factory: pytest.TempPathFactory) -> MastodonRepo:
    """The fake Mastodon repository, built once per test session.

    Tests that add releases should build their own with build_mastodon_repo.
    """
    return build_mastodon_repo(tmp_path_factory.mktemp("mastodon-repo") / "mastodon.git")


@pytest.fixture
def start_fleet(tmp_path: Path, mastodon_repo: MastodonRepo) -> Iterator[StartFleet]:
    """Start fleets that are stopped when the test ends, whatever happened.

    The fake repository is shared into every host at its real path.
    """
    fleets: list[TestFleet] = []

    def start(names: Sequence[str] = ("h1", "h2"), shared_paths: Sequence[Path] = ()) -> TestFleet:
        root = tmp_path / f"fleet{len(fleets)}"
        fleet = TestFleet(root, names, shared_paths=[mastodon_repo.path, *shared_paths])
        fleets.append(fleet)
        return fleet.start()

    yield start
    for fleet in fleets:
        fleet.stop()


@pytest.fixture
def fleet(start_fleet: StartFleet) -> TestFleet:
    """Two started hosts, h1 and h2."""
    return start_fleet()
