"""``rails`` / ``rake`` tasks as Mastodon's production guide runs them.

Reached through ``bundle exec rails ...``, ``bundle exec rake ...`` and the
checkout's ``bin/rails``. Tasks that load the app first check that it would
boot (encryption keys, SECRET_KEY_BASE, no REDIS_NAMESPACE), as Mastodon does.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import string
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import checkout, moderators
from .common import ToolExit, say
from .database import database_name, databases, new_database
from .rbenv import require_ruby

ALPHANUMERIC = string.ascii_letters + string.digits


def alphanumeric(length: int) -> str:
    return "".join(secrets.choice(ALPHANUMERIC) for _ in range(length))


def urlsafe(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode()


# -- tasks that do not load the app ------------------------------------------


def task_secret(_root: Path) -> None:
    say(secrets.token_hex(64))


def task_encryption_init(root: Path) -> None:
    env = checkout.rails_env(root, os.environ)
    if any(env.get(key) for key in checkout.ENCRYPTION_KEYS):
        say(
            "WARNING: It looks like encryption secrets have already been set. Please ensure "
            "you are not changing secrets for a Mastodon installation that already uses them."
        )
    say(
        "Add the following secret environment variables to your Mastodon environment "
        "(e.g. .env.production), ensure they are shared across all your nodes and do not "
        "change them after they are set:\n"
    )
    for key in checkout.ENCRYPTION_KEYS:
        say(f"{key}={alphanumeric(32)}")


def task_vapid_key(_root: Path) -> None:
    # The shapes of the webpush gem's keys: a P-256 scalar and an
    # uncompressed point, URL-safe base64 with padding.
    public_point = b"\x04" + secrets.token_bytes(64)
    say(f"VAPID_PRIVATE_KEY={urlsafe(secrets.token_bytes(32))}")
    say(f"VAPID_PUBLIC_KEY={urlsafe(public_point)}")


def task_setup(_root: Path) -> None:
    raise ToolExit(1, "mastodon:setup is interactive; automation runs its steps one by one")


NO_BOOT: dict[str, Callable[[Path], None]] = {
    "secret": task_secret,
    "db:encryption:init": task_encryption_init,
    "mastodon:webpush:generate_vapid_key": task_vapid_key,
    "mastodon:setup": task_setup,
}


# -- tasks that load the app ---------------------------------------------------


def _current(root: Path, env: Mapping[str, str]) -> str:
    return str(checkout.read_version(root, env))


def _protected(db: dict[str, Any], env: Mapping[str, str]) -> None:
    if db["environment"] == "production" and env.get("DISABLE_DATABASE_ENVIRONMENT_CHECK") != "1":
        raise ToolExit(
            1,
            "ActiveRecord::ProtectedEnvironmentError: You are attempting to run a destructive "
            "action against your 'production' database.\nIf you are sure you want to continue, "
            "run the same command with the environment variable:\n"
            "DISABLE_DATABASE_ENVIRONMENT_CHECK=1",
        )


def _load_schema(db: dict[str, Any], version: str, kind: str) -> None:
    db["schema_version"] = db["post_deployment_version"] = version
    db["migrations"].append({"kind": kind, "version": version, "at": time.time()})


def db_create(root: Path, env: Mapping[str, str]) -> None:
    name = database_name(env)
    with databases() as dbs:
        if name in dbs:
            say(f"Database '{name}' already exists")
        else:
            dbs[name] = new_database(env)
            say(f"Created database '{name}'")


def db_setup(root: Path, env: Mapping[str, str]) -> None:
    name = database_name(env)
    with databases() as dbs:
        if name in dbs:
            say(f"Database '{name}' already exists")
            _protected(dbs[name], env)
        db = dbs.setdefault(name, new_database(env))
        _load_schema(db, _current(root, env), "schema:load")


def db_migrate(root: Path, env: Mapping[str, str]) -> None:
    name = database_name(env)
    version = _current(root, env)
    with databases() as dbs:
        if name not in dbs:
            raise ToolExit(
                1,
                f"ActiveRecord::NoDatabaseError: We could not find your database: {name}. "
                "Available database configurations can be found in config/database.yml.",
            )
        db = dbs[name]
        pre_only = env.get("SKIP_POST_DEPLOYMENT_MIGRATIONS") == "true"
        db["schema_version"] = version
        if not pre_only:
            db["post_deployment_version"] = version
        kind = "pre-deployment" if pre_only else "all"
        db["migrations"].append({"kind": kind, "version": version, "at": time.time()})


def db_prepare(root: Path, env: Mapping[str, str]) -> None:
    with databases() as dbs:
        exists = database_name(env) in dbs
    (db_migrate if exists else db_setup)(root, env)


def db_schema_load(root: Path, env: Mapping[str, str]) -> None:
    name = database_name(env)
    with databases() as dbs:
        if name not in dbs:
            raise ToolExit(
                1, f"ActiveRecord::NoDatabaseError: We could not find your database: {name}."
            )
        _protected(dbs[name], env)
        _load_schema(dbs[name], _current(root, env), "schema:load")


def assets_precompile(root: Path, env: Mapping[str, str]) -> None:
    packs = root / "public" / "packs"
    packs.mkdir(parents=True, exist_ok=True)
    manifest = {"version": _current(root, env), "compiled_at": time.time()}
    (packs / "manifest.json").write_text(json.dumps(manifest) + "\n")
    say("Compiling assets... done")


SETTING_ASSIGNMENT = re.compile(
    r"Setting\.(\w+)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|true|false|\d+)"
)
HASH_PAIR = re.compile(r"(\w+):\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|true|false|nil|\d+)")
JSON_SOURCE = re.compile(
    r"JSON\.(?:parse\(File\.read|load_file)\(\s*['\"]([^'\"]+)['\"]"
    r"|JSON\.parse\(ENV(?:\.fetch\(|\[)\s*['\"](\w+)['\"]"
)


def _ruby_literal(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    if text == "nil":
        return None
    if text.isdigit():
        return int(text)
    if text.startswith('"'):
        return json.loads(text)
    return text[1:-1]


def settings_in(code: str, env: Mapping[str, str]) -> dict[str, Any]:
    """Best effort: the site settings a ``rails runner`` script saves.

    Understands ``Form::AdminSettings.new(key: "literal", ...)``,
    ``Setting.key = "literal"`` and settings read with
    ``JSON.parse(File.read("path"))`` or ``JSON.parse(ENV["NAME"])``.
    """
    found: dict[str, Any] = {}
    for path, variable in JSON_SOURCE.findall(code):
        raw = Path(path).read_text() if path else env.get(variable, "{}")
        found.update(json.loads(raw))
    start = code.find("Form::AdminSettings.new(")
    if start >= 0:
        found.update({k: _ruby_literal(v) for k, v in HASH_PAIR.findall(code[start:])})
    found.update({k: _ruby_literal(v) for k, v in SETTING_ASSIGNMENT.findall(code)})
    return found


def runner(root: Path, env: Mapping[str, str], args: list[str]) -> None:
    code = " ".join(a for a in args if not a.startswith("-"))
    script = Path(code)
    if script.name == moderators.SCRIPT and script.is_file():
        moderators.run(env)
        return
    if code.endswith(".rb") and script.is_file():
        code = script.read_text()
    changes = settings_in(code, env)
    if not changes:
        return
    with databases() as dbs:
        name = database_name(env)
        if name not in dbs:
            raise ToolExit(
                1, f"ActiveRecord::NoDatabaseError: We could not find your database: {name}."
            )
        dbs[name]["settings"].update(changes)


BOOTED: dict[str, Callable[[Path, Mapping[str, str]], None]] = {
    "db:create": db_create,
    "db:setup": db_setup,
    "db:migrate": db_migrate,
    "db:prepare": db_prepare,
    "db:schema:load": db_schema_load,
    "assets:precompile": assets_precompile,
}


def split_arguments(args: list[str]) -> list[str]:
    """Apply rake's ``NAME=value`` arguments and ``-e ENV``; return the rest."""
    rest = []
    items = iter(args)
    for arg in items:
        if re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", arg):
            name, _, value = arg.partition("=")
            os.environ[name] = value
        elif arg in ("-e", "--environment"):
            os.environ["RAILS_ENV"] = next(items, "development")
        elif arg.startswith("--environment="):
            os.environ["RAILS_ENV"] = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest


def main(argv: list[str]) -> int:
    """bin/rails ARGS."""
    return run_rails(argv[1:], "rails")


def run_rails(args: list[str], tool: str = "rails") -> int:
    """Run ``rails ARGS`` (or ``rake ARGS``) in the current directory."""
    root = checkout.require_root(os.getcwd(), tool)
    require_ruby()
    checkout.require_gems(root)
    args = split_arguments(args)
    if not args:
        raise ToolExit(1, f"{tool}: no task given")
    if args[0] in ("runner", "r"):
        runner(root, checkout.boot(root, tool), args[1:])
        return 0
    for task in args:
        if task in NO_BOOT:
            NO_BOOT[task](root)
            continue
        env = checkout.boot(root, tool)
        BOOTED.get(task, lambda _root, _env: None)(root, env)
    return 0
