"""The secret key, encryption of secrets at rest, and hashing of bearer secrets.

Secrets Herd must read back (SSH keys, client secrets, Mastodon keys) are
encrypted with a Fernet key derived from the secret key. Secrets Herd only has
to recognise (API tokens, invitation tokens) are stored as SHA-256 digests:
they carry 256 bits of randomness, so a slow hash would add nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from functools import lru_cache
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from controlplane.settings import Settings, get_settings


class SecretKeyError(RuntimeError):
    """The secret key is missing, unreadable or too weak."""


class DecryptionError(RuntimeError):
    """A stored secret cannot be decrypted with this deployment's key."""


def load_or_create_secret_key(settings: Settings) -> bytes:
    if settings.secret_key:
        key = settings.secret_key.encode()
    else:
        path = settings.resolved_secret_key_file
        if not path.exists():
            _create_key_file(path)
        key = path.read_bytes().strip()
    if len(key) < 32:
        raise SecretKeyError("the secret key must be at least 32 characters")
    return key


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # O_EXCL: when two processes start at once, exactly one writes the key and
    # the other reads it, rather than each keeping a key of its own.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_urlsafe(48) + "\n")


def derive_key(key: bytes, purpose: bytes) -> bytes:
    """A 32-byte key for one purpose, derived from the secret key, so a key
    leaked from one use (sessions, say) opens nothing else."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(key)


class SecretBox:
    """Encrypts and decrypts secrets stored in the database."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(derive_key(key, b"herd/secrets-at-rest/v1")))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise DecryptionError("stored secret does not decrypt with this secret key") from exc


@lru_cache
def _box_for(key: bytes) -> SecretBox:
    return SecretBox(key)


def secret_box(settings: Settings | None = None) -> SecretBox:
    return _box_for(load_or_create_secret_key(settings or get_settings()))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def digest_matches(secret: str, expected_hex: str) -> bool:
    return hmac.compare_digest(digest(secret), expected_hex)
