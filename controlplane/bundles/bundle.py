"""Assembling an organisation's bundle: its files, the manifest over them,
the signature over the manifest, all in one tar.gz."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from controlplane.bundles import signing
from controlplane.bundles.archive import write_tar_gz
from controlplane.bundles.contents import (
    BundleServer,
    inventory_files,
    source_files,
    supported_releases,
)
from controlplane.bundles.manifest import MANIFEST, SIGNATURE, manifest_bytes, sha256
from controlplane.bundles.version import BUNDLE_VERSION, MANIFEST_FORMAT, changelog
from controlplane.tenancy.models import Organisation


@dataclass(frozen=True)
class Bundle:
    data: bytes
    filename: str
    version: str
    sha256: str
    servers: list[BundleServer]
    secrets: bool


def seal(files: dict[str, bytes], about: dict[str, Any]) -> dict[str, bytes]:
    """`files` with the manifest (`about`, and every file's SHA-256) and the
    signature over it."""
    manifest = {
        **about,
        "format": MANIFEST_FORMAT,
        "files": {path: sha256(data) for path, data in sorted(files.items())},
    }
    signed = manifest_bytes(manifest)
    return {**files, MANIFEST: signed, SIGNATURE: signing.sign(signed)}


def build(session: Session, organisation: Organisation, passphrase: str | None) -> Bundle:
    """The signed bundle; with `passphrase`, the servers' secrets in it,
    vault-encrypted. Without secrets the same state gives the same bytes (no
    time in the manifest, fixed times in the archive); vault encryption salts
    each file afresh, so a bundle with secrets differs every time."""
    files, servers = inventory_files(session, organisation.id, passphrase)
    files.update(source_files())
    about: dict[str, Any] = {
        "bundle_version": BUNDLE_VERSION,
        "organisation": {"id": str(organisation.id), "slug": organisation.slug},
        "mastodon_releases": supported_releases(session),
        "changelog": changelog(),
        "secrets": "ansible-vault" if passphrase is not None else "left-out",
        "servers": [
            {"host": s.name, "server_id": str(s.server_id), "mastodon_version": s.version}
            for s in servers
        ],
    }
    files = seal(files, about)
    data = write_tar_gz(files)
    return Bundle(
        data=data,
        filename=f"herd-playbooks-{organisation.slug}-{BUNDLE_VERSION}.tar.gz",
        version=BUNDLE_VERSION,
        sha256=sha256(data),
        servers=servers,
        secrets=passphrase is not None,
    )
