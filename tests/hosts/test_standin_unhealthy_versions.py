"""The stand-in's /health switch, in this process (no host): unhealthy for
every version, or only for the versions listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from .standin import common, web


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "STATE_DIR", tmp_path)
    return tmp_path


def test_health_follows_the_unhealthy_file(state: Path) -> None:
    assert not web.unhealthy("4.5.1")
    (state / common.UNHEALTHY).write_text("")
    assert web.unhealthy("4.5.1")
    assert web.unhealthy("4.6.0")
    (state / common.UNHEALTHY).write_text("4.6.0\n4.6.1\n")
    assert not web.unhealthy("4.5.1")
    assert web.unhealthy("4.6.0")
    assert web.unhealthy("4.6.1")
