"""``tootctl``: the account and settings commands the playbooks use.

Accounts live in the stand-in database of DB_NAME, so creating the owner
twice fails the way Mastodon does ("has already been taken"), which is what
an idempotent playbook has to cope with.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from typing import Any

from . import checkout
from .common import ToolExit, say
from .database import database_name, databases
from .rbenv import require_ruby

VALUE_OPTIONS = frozenset({"email", "role"})
ROLES = ("Owner", "Admin", "Moderator")
REGISTRATION_MODES = {"open": "open", "approved": "approved", "close": "none"}


def parse_options(args: list[str]) -> tuple[list[str], dict[str, Any]]:
    """Thor-style options: ``--email x``, ``--email=x``, ``--confirmed``."""
    positional: list[str] = []
    options: dict[str, Any] = {}
    items = iter(args)
    for arg in items:
        if not arg.startswith("--"):
            positional.append(arg)
            continue
        name, sep, value = arg[2:].partition("=")
        name = name.replace("-", "_")
        if name in VALUE_OPTIONS:
            options[name] = value if sep else next(items, "")
        else:
            options[name] = True
    return positional, options


def _database(dbs: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    name = database_name(env)
    if name not in dbs:
        raise ToolExit(
            1, f"ActiveRecord::NoDatabaseError: We could not find your database: {name}."
        )
    return dbs[name]


def _errors(errors: dict[str, str]) -> ToolExit:
    lines = [f"Failure/Error: \n{key}\n    {message}" for key, message in errors.items()]
    return ToolExit(1, "\n".join(lines))


def _check_role(role: str | None) -> None:
    if role and role not in ROLES:
        raise ToolExit(1, "Cannot find user role with that name")


def accounts_create(env: Mapping[str, str], username: str, options: dict[str, Any]) -> None:
    _check_role(options.get("role"))
    with databases() as dbs:
        accounts = _database(dbs, env)["accounts"]
        errors = {}
        if username in accounts and not options.get("reattach"):
            errors["account.username"] = "has already been taken"
        email = options.get("email") or ""
        if not email:
            errors["email"] = "can't be blank"
        elif any(a["email"] == email for name, a in accounts.items() if name != username):
            errors["email"] = "has already been taken"
        if errors:
            raise _errors(errors)
        accounts[username] = {
            "email": email,
            "role": options.get("role"),
            "confirmed": bool(options.get("confirmed")),
            "approved": bool(options.get("approve")),
            "disabled": False,
            "created_at": time.time(),
        }
    say("OK")
    say(f"New password: {secrets.token_hex(16)}")


def accounts_modify(env: Mapping[str, str], username: str, options: dict[str, Any]) -> None:
    _check_role(options.get("role"))
    with databases() as dbs:
        account = _database(dbs, env)["accounts"].get(username)
        if account is None:
            raise ToolExit(1, "No user with such username")
        if options.get("role"):
            account["role"] = options["role"]
        if options.get("remove_role"):
            account["role"] = None
        if options.get("email"):
            account["email"] = options["email"]
        for flag, field, value in (
            ("confirm", "confirmed", True),
            ("approve", "approved", True),
            ("disable", "disabled", True),
            ("enable", "disabled", False),
        ):
            if options.get(flag):
                account[field] = value
    say("OK")
    if options.get("reset_password"):
        say(f"New password: {secrets.token_hex(16)}")


def accounts(env: Mapping[str, str], args: list[str]) -> None:
    positional, options = parse_options(args)
    if len(positional) < 2:
        raise ToolExit(1, "tootctl accounts: command and USERNAME expected")
    command, username = positional[0], positional[1]
    if command == "create":
        accounts_create(env, username, options)
    elif command == "modify":
        accounts_modify(env, username, options)
    elif command == "delete":
        with databases() as dbs:
            if _database(dbs, env)["accounts"].pop(username, None) is None:
                raise ToolExit(1, "No user with such username")
        say("OK")
    else:
        say("OK")


def settings(env: Mapping[str, str], args: list[str]) -> None:
    if args[:1] == ["registrations"] and len(args) == 2 and args[1] in REGISTRATION_MODES:
        with databases() as dbs:
            _database(dbs, env)["settings"]["registrations_mode"] = REGISTRATION_MODES[args[1]]
        say("OK")
        return
    raise ToolExit(1, f"tootctl settings: unknown command {' '.join(args)!r}")


def tootctl(argv: list[str]) -> int:
    root = checkout.require_root(os.getcwd(), "tootctl")
    require_ruby()
    checkout.require_gems(root)
    args = argv[1:]
    if args[:1] in (["--version"], ["version"]):
        say(str(checkout.read_version(root, os.environ)))
        return 0
    env = checkout.boot(root, "tootctl")
    group, rest = (args[0], args[1:]) if args else ("help", [])
    if group == "accounts":
        accounts(env, rest)
    elif group == "settings":
        settings(env, rest)
    else:
        # cache clear, feeds build, search deploy, media remove ...: nothing
        # to emulate beyond the record of the call.
        say("OK")
    return 0
