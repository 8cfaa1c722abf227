"""The manifest of a bundle, and checking a bundle against it.

`manifest.json` lists every file of the bundle with its SHA-256;
`manifest.json.sig` is the Ed25519 signature over the manifest's exact bytes.
A bundle verifies when the signature does, every listed file is there with
its checksum, and no file is there that the manifest does not list. The same
check runs on the archive before `herd playbooks pull` unpacks anything and
on an unpacked folder (`herd playbooks verify`); it needs only the public key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controlplane.bundles import signing
from controlplane.bundles.version import MANIFEST_FORMAT

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
# Files outside the manifest's own list: the manifest cannot list itself or
# the signature over it.
OUTSIDE = frozenset({MANIFEST, SIGNATURE})


class BundleInvalid(ValueError):
    """The bundle fails verification; the message says which part and why."""


@dataclass(frozen=True)
class Verified:
    manifest: dict[str, Any]
    fingerprint: str
    files: int


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    # Sorted keys and a fixed layout: the same manifest is the same bytes.
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def verify(files: Mapping[str, bytes], public_key: Ed25519PublicKey) -> Verified:
    """Check a bundle given as path → content (paths relative, with '/')."""
    if MANIFEST not in files:
        raise BundleInvalid(f"{MANIFEST} is missing: this is not a signed bundle")
    if SIGNATURE not in files:
        raise BundleInvalid(f"{SIGNATURE} is missing: the bundle is not signed")
    try:
        signing.verify(public_key, files[MANIFEST], files[SIGNATURE])
    except signing.BadSignature as exc:
        raise BundleInvalid(str(exc)) from exc
    # Only a manifest whose signature verified is read at all.
    manifest = json.loads(files[MANIFEST])
    if manifest.get("format") != MANIFEST_FORMAT:
        raise BundleInvalid(
            f"manifest format {manifest.get('format')!r} is not one this herd reads "
            f"({MANIFEST_FORMAT}); update the herd CLI"
        )
    listed: dict[str, str] = manifest["files"]
    problems = []
    for path, expected in sorted(listed.items()):
        if path not in files:
            problems.append(f"{path}: missing")
        elif sha256(files[path]) != expected:
            problems.append(f"{path}: checksum differs from the manifest (the file was changed)")
    unlisted = sorted(set(files) - set(listed) - OUTSIDE)
    problems += [f"{path}: not listed in the manifest" for path in unlisted]
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise BundleInvalid(f"the bundle does not match its signed manifest: {shown}{more}")
    return Verified(manifest, signing.fingerprint(public_key), len(listed))
