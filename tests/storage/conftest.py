"""Storage tests run against moto in server mode (tests/moto.py)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _no_storage_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings explicitly; a developer's HERD_S3_* or AWS
    profile must not leak into them."""
    for name in list(os.environ):
        if name.startswith(("HERD_S3_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
