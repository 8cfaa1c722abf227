"""The Ed25519 key that signs bundle manifests, and checking a signature.

The private key is generated once into Herd's data directory
(`playbook-signing.key`, PEM, mode 0600) or read from
HERD_PLAYBOOK_SIGNING_KEY_FILE. Every API process must sign with the same
key, so a deployment with several machines mounts one file there, as it does
for the secret key. Verification needs only the public key, so the CLI can
check a bundle without any of Herd's secrets.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controlplane.settings import Settings, get_settings

KEY_FILE = "playbook-signing.key"


class SigningKeyError(RuntimeError):
    """The signing key is missing, unreadable or not an Ed25519 key."""


class BadSignature(ValueError):
    """A signature that does not verify, or a public key that cannot be read."""


@dataclass(frozen=True)
class PublicKey:
    pem: str
    fingerprint: str


def key_path(settings: Settings) -> Path:
    return settings.playbook_signing_key_file or settings.data_dir / KEY_FILE


def _create(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    # Written whole to a private name (O_EXCL, 0600), then linked into place:
    # link() fails when the key exists, so of two processes starting at once
    # exactly one key wins, and no process ever reads a half-written file.
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        with contextlib.suppress(FileExistsError):
            os.link(scratch, path)
    finally:
        scratch.unlink(missing_ok=True)


@lru_cache
def _load(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"cannot read the playbook signing key {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    return key


def signing_key(settings: Settings | None = None) -> Ed25519PrivateKey:
    settings = settings or get_settings()
    path = key_path(settings)
    if not path.exists():
        if settings.playbook_signing_key_file is not None:
            # A key the operator named is one customers may have pinned:
            # making up another in its place would break every pinned check.
            raise SigningKeyError(f"HERD_PLAYBOOK_SIGNING_KEY_FILE {path} does not exist")
        _create(path)
    return _load(path)


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def fingerprint(key: Ed25519PublicKey) -> str:
    """SHA-256 of the raw 32-byte key, as OpenSSH shows key fingerprints."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")


def published_key(settings: Settings | None = None) -> PublicKey:
    key = signing_key(settings).public_key()
    return PublicKey(public_pem(key), fingerprint(key))


def sign(data: bytes, settings: Settings | None = None) -> bytes:
    """A detached signature, Base64 with a newline (a text file in the bundle)."""
    return base64.b64encode(signing_key(settings).sign(data)) + b"\n"


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except ValueError as exc:
        raise BadSignature(f"the public key is not a PEM public key ({exc})") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise BadSignature("the public key is not an Ed25519 key")
    return key


def verify(public_key: Ed25519PublicKey, data: bytes, signature: bytes) -> None:
    try:
        raw = base64.b64decode(signature, validate=False)
        # Only the exact form sign() writes: Base64 leaves slack (unused bits
        # in the last character, trailing whitespace), and a signature file
        # with one byte changed must not pass.
        if signature != base64.b64encode(raw) + b"\n":
            raise ValueError("not the signature's canonical form")
        public_key.verify(raw, data)
    except (ValueError, InvalidSignature) as exc:
        raise BadSignature(
            "the manifest's signature does not verify with key "
            f"{fingerprint(public_key)}: the manifest or its signature was changed, "
            "or it was signed with another key"
        ) from exc
