"""The stand-in's idea of Mastodon's PostgreSQL databases, kept in a JSON file.

One entry per database name (DB_NAME, as Mastodon's database.yml reads it),
so several Mastodon installations on one host keep apart. It holds what the
stand-in needs to answer like Mastodon would: whether the database exists,
which release's migrations ran (pre- and post-deployment), the accounts
``tootctl`` created and the site settings ``rails runner`` saved.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .common import DATABASES, read_json, state_path, write_json


def database_name(env: Mapping[str, str]) -> str:
    mode = env.get("RAILS_ENV") or "development"
    return env.get("DB_NAME") or f"mastodon_{mode}"


@contextmanager
def databases() -> Iterator[dict[str, Any]]:
    """Read, change and write back the databases under one lock."""
    lock_path = state_path(".databases.lock")
    # Read-only suffices for flock, and works whoever created the file.
    fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = read_json(DATABASES, {})
        yield data
        write_json(DATABASES, data)
    finally:
        os.close(fd)


def new_database(env: Mapping[str, str]) -> dict[str, Any]:
    return {
        "environment": env.get("RAILS_ENV") or "development",
        "host": env.get("DB_HOST", ""),
        "created_at": time.time(),
        "schema_version": None,
        "post_deployment_version": None,
        "migrations": [],
        "accounts": {},
        "settings": {},
    }
