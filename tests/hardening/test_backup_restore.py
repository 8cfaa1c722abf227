"""Backing up Herd itself, as README.md's "Backing up Herd" says: the
PostgreSQL database with pg_dump, and the secret key file. The source
database is dropped after the dump, so nothing but the backup survives; a
Herd on the restored database with the saved key decrypts every stored
secret (every encrypted column of every table) and accepts the old API
tokens; with another key it fails, saying so."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlmodel import Session, SQLModel

from controlplane import migrate
from controlplane.auth.roles import OrgRole
from controlplane.crypto import DecryptionError, secret_box
from controlplane.db import dispose_engines, engine_for
from controlplane.identity.models import OrganisationSso, ServerSso
from controlplane.moderation.models import AccessState, ModeratorAccess
from controlplane.moderation.queue import webhook_secret
from controlplane.servers import secrets as server_secrets
from controlplane.servers.lifecycle import ServerState
from controlplane.settings import get_settings
from controlplane.storage.models import ServerStorage
from tests import factories
from tests.conftest import POSTGRES_SERVER_URL


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class Databases:
    """Throwaway databases on the test server, dropped at the end."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self, purpose: str) -> str:
        name = f"herd_backup_{purpose}_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(_libpq(POSTGRES_SERVER_URL), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        self.names.append(name)
        return make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(False)

    def drop(self, url: str) -> None:
        dispose_engines()
        name = make_url(url).database
        with psycopg.connect(_libpq(POSTGRES_SERVER_URL), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def databases() -> Iterator[Databases]:
    made = Databases()
    yield made
    for name in made.names:
        made.drop(make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(False))


def _use(monkeypatch: pytest.MonkeyPatch, url: str, data_dir: Path, key_file: Path) -> None:
    """Point Herd at a database and a data directory, keyed by a key file
    (the embedded default: no HERD_SECRET_KEY)."""
    monkeypatch.delenv("HERD_SECRET_KEY", raising=False)
    monkeypatch.setenv("HERD_DATABASE_URL", url)
    monkeypatch.setenv("HERD_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HERD_SECRET_KEY_FILE", str(key_file))
    get_settings.cache_clear()


def _store_secrets(url: str) -> tuple[dict[str, str], str]:
    """One of each kind of stored secret; returns the plaintexts and an API
    token."""
    box = secret_box()
    plain = {
        "ssh key": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{uuid.uuid4().hex}\n-----END",
        "s3 secret": "s3-" + uuid.uuid4().hex,
        "upstream secret": "upstream-" + uuid.uuid4().hex,
        "sso client secret": "sso-" + uuid.uuid4().hex,
        "moderator token": "mod-" + uuid.uuid4().hex,
    }
    with Session(engine_for(url), expire_on_commit=False) as session:
        org = factories.organisation(session)
        host = factories.host(session)
        host.ssh_private_key_encrypted = box.encrypt(plain["ssh key"])
        server = factories.server(
            session, org, factories.plan(session), ServerState.active, host=host
        )
        for name, value in server_secrets.ensure(session, server.id).items():
            plain[f"mastodon {name}"] = value
        session.add(
            ServerStorage(
                server_id=server.id,
                media_bucket="herd-media",
                backups_bucket="herd-backups",
                access_key_id="AKIAHERDBACKUPTEST",
                secret_access_key_encrypted=box.encrypt(plain["s3 secret"]),
            )
        )
        session.add(
            OrganisationSso(
                organisation_id=org.id,
                enabled=True,
                upstream={"kind": "oidc", "issuer": "https://idp.example-herd.org"},
                upstream_secret_encrypted=box.encrypt(plain["upstream secret"]),
            )
        )
        session.add(
            ServerSso(
                server_id=server.id,
                realm="herd-org",
                client_id=f"mastodon-{server.id}",
                redirect_uri="https://s.example-herd.org/auth/auth/openid_connect/callback",
                issuer="https://sso.example-herd.org/realms/herd-org",
                secret_encrypted=box.encrypt(plain["sso client secret"]),
            )
        )
        session.add(
            ModeratorAccess(
                server_id=server.id,
                mastodon_username="moderator",
                token_encrypted=box.encrypt(plain["moderator token"]),
                state=AccessState.granted,
            )
        )
        plain["report webhook secret"] = webhook_secret(session, server.id)
        owner = factories.member(session, org, OrgRole.owner)
        _, token = factories.token(session, owner)
        session.commit()
    return plain, token


def _stored_ciphertexts(url: str) -> dict[str, list[str]]:
    """Every value of every encrypted column (by Herd's naming: `encrypted`
    or `*_encrypted`), so a new kind of stored secret is covered too."""
    found: dict[str, list[str]] = {}
    with engine_for(url).connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for column in table.columns:
                if column.name == "encrypted" or column.name.endswith("_encrypted"):
                    rows = connection.execute(
                        text(f'SELECT "{column.name}" FROM "{table.name}"')
                    ).scalars()
                    found[f"{table.name}.{column.name}"] = [v for v in rows if v is not None]
    return found


def _decrypt_all(url: str) -> set[str]:
    box = secret_box()
    values: set[str] = set()
    for ciphertexts in _stored_ciphertexts(url).values():
        for ciphertext in ciphertexts:
            plaintext = box.decrypt(ciphertext)
            if plaintext.startswith("{"):  # a server's secrets: one JSON document
                values.update(json.loads(plaintext).values())
            else:
                values.add(plaintext)
    return values


def test_a_restored_herd_decrypts_every_secret_with_the_saved_key(
    databases: Databases, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = databases.create("source")
    migrate.upgrade(source)
    data = tmp_path / "data"
    _use(monkeypatch, source, data, data / "secret.key")
    plain, token = _store_secrets(source)
    assert (data / "secret.key").exists(), "Herd generated its key on first use"
    columns = _stored_ciphertexts(source)
    assert all(columns.values()), f"each encrypted column holds a secret: {columns}"

    # -- the backup: a dump and a copy of the key file ----------------------------------
    backup = tmp_path / "backup"
    backup.mkdir(mode=0o700)
    subprocess.run(
        ["pg_dump", "--format=custom", f"--file={backup / 'herd.dump'}", _libpq(source)],
        check=True,
        capture_output=True,
    )
    shutil.copy2(data / "secret.key", backup / "secret.key")
    databases.drop(source)  # the disaster: nothing left but the backup
    shutil.rmtree(data)

    # -- the restore: a fresh database, the saved key -----------------------------------
    restored = databases.create("restored")
    subprocess.run(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            f"--dbname={_libpq(restored)}",
            str(backup / "herd.dump"),
        ],
        check=True,
        capture_output=True,
    )
    _use(monkeypatch, restored, tmp_path / "new-data", backup / "secret.key")
    migrate.upgrade(restored)  # what a deployment runs: nothing to do
    assert _decrypt_all(restored) == set(plain.values())
    from controlplane.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text

    # -- with another key (say the file was not restored and Herd made a new one) --------
    _use(monkeypatch, restored, tmp_path / "other-data", tmp_path / "other-data" / "secret.key")
    with pytest.raises(DecryptionError, match="does not decrypt with this secret key"):
        _decrypt_all(restored)
