from __future__ import annotations

import stat
from pathlib import Path

import pytest

from controlplane.crypto import (
    DecryptionError,
    SecretBox,
    SecretKeyError,
    digest,
    digest_matches,
    load_or_create_secret_key,
)
from controlplane.settings import Settings


def test_first_start_writes_a_private_key_file_and_later_starts_reuse_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    key = load_or_create_secret_key(settings)
    path = settings.resolved_secret_key_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key) >= 48
    assert load_or_create_secret_key(settings) == key


def test_a_short_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretKeyError):
        load_or_create_secret_key(Settings(data_dir=tmp_path, secret_key="short"))


def test_secrets_round_trip_and_do_not_decrypt_under_another_key() -> None:
    box = SecretBox(b"k" * 40)
    sealed = box.encrypt("ssh-private-key-material")
    assert "ssh-private-key-material" not in sealed
    assert box.decrypt(sealed) == "ssh-private-key-material"
    with pytest.raises(DecryptionError):
        SecretBox(b"j" * 40).decrypt(sealed)


def test_digest_matching() -> None:
    assert digest_matches("herd_abc", digest("herd_abc"))
    assert not digest_matches("herd_abd", digest("herd_abc"))


def test_production_refuses_placeholder_secret_and_embedded_database(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="placeholder"):
        Settings(environment="production", secret_key="changeme", database_url="postgresql://x")
    with pytest.raises(ValueError, match="HERD_DATABASE_URL"):
        Settings(environment="production", secret_key="x" * 40)
