"""Mastodon's per-server secrets: generated once by Herd, stored encrypted,
and never changed (changing SECRET_KEY_BASE or the Active Record encryption
keys would make the server's own data unreadable).

Generated here rather than on the host so a rebuilt host gets the same keys
and a backup of Herd's database plus its secret key can restore any server.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from controlplane.crypto import secret_box
from controlplane.servers.models import ServerSecrets

_ALPHANUMERIC = string.ascii_letters + string.digits


def _alphanumeric(length: int) -> str:
    return "".join(secrets.choice(_ALPHANUMERIC) for _ in range(length))


def _vapid_keys() -> tuple[str, str]:
    """A P-256 key pair encoded as Mastodon's webpush gem does: URL-safe
    Base64 of the 32-byte private scalar and the 65-byte uncompressed point."""
    private = ec.generate_private_key(ec.SECP256R1())
    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    point = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return base64.urlsafe_b64encode(scalar).decode(), base64.urlsafe_b64encode(point).decode()


def generate() -> dict[str, str]:
    vapid_private, vapid_public = _vapid_keys()
    return {
        "SECRET_KEY_BASE": secrets.token_hex(64),
        "VAPID_PRIVATE_KEY": vapid_private,
        "VAPID_PUBLIC_KEY": vapid_public,
        "ACTIVE_RECORD_ENCRYPTION_DETERMINISTIC_KEY": _alphanumeric(32),
        "ACTIVE_RECORD_ENCRYPTION_KEY_DERIVATION_SALT": _alphanumeric(32),
        "ACTIVE_RECORD_ENCRYPTION_PRIMARY_KEY": _alphanumeric(32),
        "DB_PASS": secrets.token_urlsafe(24),
    }


def ensure(session: Session, server_id: uuid.UUID) -> dict[str, str]:
    """The server's secrets, generated on first call. Safe to race: the
    primary key lets one writer win and the other reads its values."""
    existing = session.get(ServerSecrets, server_id)
    if existing is None:
        row = ServerSecrets(
            server_id=server_id, encrypted=secret_box().encrypt(json.dumps(generate()))
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:
            existing = session.get(ServerSecrets, server_id)
            assert existing is not None
        else:
            existing = row
    return json.loads(secret_box().decrypt(existing.encrypted))


def load(session: Session, server_id: uuid.UUID) -> dict[str, str] | None:
    row = session.get(ServerSecrets, server_id)
    return None if row is None else json.loads(secret_box().decrypt(row.encrypted))


def values(session: Session, server_id: uuid.UUID) -> list[str]:
    """Every secret value of the server, for redaction."""
    stored = load(session, server_id)
    return list(stored.values()) if stored else []
