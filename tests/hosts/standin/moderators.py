"""What playbooks/roles/mastodon_moderators/files/herd-moderators.rb does,
for the stand-in's ``rails runner``: recognised by the script's file name.

It reads HERD_MODERATOR_ACCESS like the real script, finds each account
``tootctl`` made in the stand-in database, gives it an account id the admin
API knows (reports.json ``accounts``, with the account's current role), and
installs or revokes its tokens in tokens.json, which admin_api.py checks.
Only tokens of the script's application are touched, as Doorkeeper scopes
them to the application.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from .admin_api import account_record, admin_data
from .common import TOKENS, WEBHOOKS, ToolExit, read_json, say, write_json
from .database import database_name, databases

SCRIPT = "herd-moderators.rb"
FIRST_ACCOUNT_ID = 1001


def _account_id(account: dict[str, Any], known: list[dict[str, Any]]) -> str:
    if "id" not in account:
        taken = [int(a["id"]) for a in known if str(a.get("id", "")).isdigit()]
        account["id"] = str(max([FIRST_ACCOUNT_ID - 1, *taken]) + 1)
    return str(account["id"])


def _sync_admin_record(data: dict[str, Any], account_id: str, username: str, role: Any) -> None:
    record = next((a for a in data["accounts"] if a["id"] == account_id), None)
    if record is None:
        record = account_record(account_id, username)
        data["accounts"].append(record)
    record["role"] = role


def run(env: Mapping[str, str]) -> None:
    raw = os.environ.get("HERD_MODERATOR_ACCESS")
    if raw is None:
        raise ToolExit(1, 'KeyError: key not found: "HERD_MODERATOR_ACCESS"')
    request = json.loads(raw)
    application, scopes = request["application"], request["scopes"].split()
    granted: list[dict[str, str]] = []
    revoked: list[str] = []
    with databases() as dbs, admin_data() as data:
        name = database_name(env)
        if name not in dbs:
            raise ToolExit(
                1, f"ActiveRecord::NoDatabaseError: We could not find your database: {name}."
            )
        accounts = dbs[name]["accounts"]
        tokens: dict[str, dict[str, Any]] = read_json(TOKENS, {})
        for moderator in request["grant"]:
            username, value = moderator["username"], moderator["token"]
            account = accounts.get(username)
            if account is None:
                raise ToolExit(1, f"RuntimeError: no local account {username}")
            account_id = _account_id(account, data["accounts"])
            _sync_admin_record(data, account_id, username, account.get("role"))
            for other in [
                t
                for t, held in tokens.items()
                if held.get("application") == application
                and held.get("account_id") == account_id
                and t != value
            ]:
                del tokens[other]
            tokens[value] = {"account_id": account_id, "scopes": scopes, "application": application}
            granted.append({"username": username, "account_id": account_id})
        for username in request["revoke"]:
            account = accounts.get(username)
            if account is None or "id" not in account:
                continue
            account_id = str(account["id"])
            _sync_admin_record(data, account_id, username, account.get("role"))
            for gone in [
                t
                for t, held in tokens.items()
                if held.get("application") == application and held.get("account_id") == account_id
            ]:
                del tokens[gone]
            revoked.append(username)
        write_json(TOKENS, tokens)
    webhook = _webhook(request.get("webhook"))
    say(
        json.dumps(
            {"herd_moderators": {"granted": granted, "revoked": revoked, "webhook": webhook}}
        )
    )


def _webhook(hook: Mapping[str, Any] | None) -> str | None:
    """Mastodon's Webhook records, by URL, in webhooks.json: registered with
    its events and secret, or destroyed."""
    if not hook:
        return None
    hooks: dict[str, dict[str, Any]] = read_json(WEBHOOKS, {})
    if hook.get("secret"):
        if len(hook["secret"]) < 12:
            raise ToolExit(1, "ActiveRecord::RecordInvalid: Validation failed: Secret is too short")
        hooks[hook["url"]] = {
            "events": ["report.created", "report.updated"],
            "secret": hook["secret"],
            "enabled": True,
        }
        state = "registered"
    else:
        hooks.pop(hook["url"], None)
        state = "removed"
    write_json(WEBHOOKS, hooks)
    return state
