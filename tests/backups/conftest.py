"""Backups tests build their object storage settings explicitly."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from controlplane.storage import get_storage_settings


@pytest.fixture(autouse=True)
def _no_storage_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A developer's HERD_S3_* or AWS profile must not leak into the tests."""
    for name in list(os.environ):
        if name.startswith(("HERD_S3_", "AWS_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    get_storage_settings.cache_clear()
    yield
    get_storage_settings.cache_clear()
