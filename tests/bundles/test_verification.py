"""Verifying a bundle: any change to any file, to the manifest or to the
signature fails with a message naming what failed. No database needed."""

from __future__ import annotations

import io
import os
import re
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from controlplane.bundles import signing
from controlplane.bundles.archive import (
    UnsafeBundle,
    read_folder,
    read_tar_gz,
    write_folder,
    write_tar_gz,
)
from controlplane.bundles.bundle import seal
from controlplane.bundles.contents import source_files
from controlplane.bundles.manifest import MANIFEST, SIGNATURE, BundleInvalid, verify
from controlplane.bundles.version import BUNDLE_VERSION, CHANGELOG
from controlplane.settings import get_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("HERD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HERD_PLAYBOOK_SIGNING_KEY_FILE", raising=False)
    get_settings.cache_clear()
    yield tmp_path / "data"
    get_settings.cache_clear()


@pytest.fixture
def bundle(data_dir: Path) -> dict[str, bytes]:
    files = source_files()
    files["inventory/hosts.yml"] = b"all: {}\n"
    files["inventory/host_vars/a.example/vault.yml"] = b"$ANSIBLE_VAULT;1.1;AES256\n3132\n"
    return seal(files, {"bundle_version": BUNDLE_VERSION, "servers": []})


def _key():
    return signing.signing_key().public_key()


def _flip(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:] if data else b"x"


def test_a_sealed_bundle_verifies(bundle: dict[str, bytes]) -> None:
    verified = verify(bundle, _key())
    assert verified.files == len(bundle) - 2
    assert verified.manifest["bundle_version"] == BUNDLE_VERSION
    assert verified.fingerprint == signing.fingerprint(_key())


def test_one_byte_changed_in_any_file_fails(bundle: dict[str, bytes]) -> None:
    key = _key()
    listed = [name for name in bundle if name not in (MANIFEST, SIGNATURE)]
    assert len(listed) > 100
    for name in listed:
        with pytest.raises(BundleInvalid) as failed:
            verify({**bundle, name: _flip(bundle[name])}, key)
        assert f"{name}: checksum differs from the manifest" in str(failed.value)


@pytest.mark.parametrize("name", [MANIFEST, SIGNATURE])
def test_one_byte_changed_in_the_manifest_or_signature_fails(
    bundle: dict[str, bytes], name: str
) -> None:
    key = _key()
    data = bundle[name]
    # Every position, not only the first: a change anywhere must show.
    for position in range(0, len(data), max(1, len(data) // 50)):
        changed = data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]
        with pytest.raises(BundleInvalid, match="signature does not verify"):
            verify({**bundle, name: changed}, key)


def test_added_removed_files_and_another_key_fail(bundle: dict[str, bytes]) -> None:
    key = _key()
    with pytest.raises(BundleInvalid, match=r"evil\.yml: not listed in the manifest"):
        verify({**bundle, "evil.yml": b"- hosts: all\n"}, key)
    without = {k: v for k, v in bundle.items() if k != "upgrade.yml"}
    with pytest.raises(BundleInvalid, match=r"upgrade\.yml: missing"):
        verify(without, key)
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(BundleInvalid, match="signed with another key"):
        verify(bundle, other)
    with pytest.raises(BundleInvalid, match="not signed"):
        verify({k: v for k, v in bundle.items() if k != SIGNATURE}, key)


def test_the_archive_is_the_same_bytes_and_reads_back(bundle: dict[str, bytes]) -> None:
    data = write_tar_gz(bundle)
    assert write_tar_gz(dict(reversed(list(bundle.items())))) == data
    assert read_tar_gz(data) == bundle
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        modes = {m.name: m.mode for m in tar.getmembers()}
    assert modes["inventory/host_vars/a.example/vault.yml"] == 0o600
    assert modes["upgrade.yml"] == 0o644


def _tar(member: tarfile.TarInfo, data: bytes = b"") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        member.size = len(data)
        tar.addfile(member, io.BytesIO(data))
    return raw.getvalue()


def test_unsafe_archives_are_refused() -> None:
    with pytest.raises(UnsafeBundle, match="outside its folder"):
        read_tar_gz(_tar(tarfile.TarInfo("../../etc/cron.d/evil"), b"x"))
    with pytest.raises(UnsafeBundle, match="outside its folder"):
        read_tar_gz(_tar(tarfile.TarInfo("/etc/passwd"), b"x"))
    link = tarfile.TarInfo("roles")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc"
    with pytest.raises(UnsafeBundle, match="not a regular file"):
        read_tar_gz(_tar(link))
    with pytest.raises(UnsafeBundle, match=r"not a readable tar\.gz"):
        read_tar_gz(b"<html>not a bundle</html>")


def test_a_folder_round_trip(bundle: dict[str, bytes], tmp_path: Path) -> None:
    folder = tmp_path / "unpacked"
    write_folder(folder, bundle)
    assert read_folder(folder) == bundle
    vault = folder / "inventory/host_vars/a.example/vault.yml"
    assert stat.S_IMODE(vault.stat().st_mode) == 0o600
    with pytest.raises(UnsafeBundle, match="not empty"):
        write_folder(folder, bundle)
    os.symlink("/etc/passwd", folder / "passwd")
    with pytest.raises(UnsafeBundle, match="not a regular file"):
        read_folder(folder)


def test_the_signing_key_is_made_once_and_kept_private(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = signing.published_key()
    path = data_dir / signing.KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    signing._load.cache_clear()
    assert signing.published_key() == first
    assert re.fullmatch(r"SHA256:[A-Za-z0-9+/]{43}", first.fingerprint)
    assert list(data_dir.glob(".playbook-signing.key.*")) == []
    # A key file the operator names must exist: Herd makes up no other.
    monkeypatch.setenv("HERD_PLAYBOOK_SIGNING_KEY_FILE", str(data_dir / "missing.pem"))
    get_settings.cache_clear()
    with pytest.raises(signing.SigningKeyError, match="does not exist"):
        signing.signing_key()


def test_the_changelog_describes_this_version() -> None:
    versions = re.findall(r"^## (\S+)", CHANGELOG.read_text(), flags=re.MULTILINE)
    assert versions[0] == BUNDLE_VERSION
