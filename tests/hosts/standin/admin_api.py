"""Mastodon's admin API for moderation: reports and account actions.

Data: /opt/standin/reports.json, ``{"accounts": [...], "reports": [...]}``
with minimal records (see ``account_record``/``report_record``) that the
answers expand into Mastodon's Admin::Report and Admin::Account shapes.
Tokens: /opt/standin/tokens.json, ``{"<token>": {"account_id": "1",
"scopes": ["admin:read", "admin:write"]}}``; the account's ``role`` decides
the permissions like Mastodon's default roles do.

Errors as Mastodon answers them: 401 ``The access token is invalid``, 403
``This action is outside the authorized scopes`` (scope) or ``This action
is not allowed`` (role), 404 ``Record not found``, 422 on bad parameters.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .common import ADMIN, TOKENS, read_json, state_path, write_json

# Mastodon's default roles and the permissions the endpoints here check.
ROLE_PERMISSIONS = {
    "Owner": {"manage_reports", "manage_users"},
    "Admin": {"manage_reports", "manage_users"},
    "Moderator": {"manage_reports", "manage_users"},
}
ROLE_IDS = {"Owner": "3", "Admin": "2", "Moderator": "1"}
ACTION_TYPES = ("none", "sensitive", "disable", "silence", "suspend")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


def account_record(account_id: str, username: str, **fields: Any) -> dict[str, Any]:
    """A minimal account for reports.json (what tests seed)."""
    return {"id": str(account_id), "username": username, **fields}


def report_record(
    report_id: str, account_id: str, target_account_id: str, **fields: Any
) -> dict[str, Any]:
    """A minimal report for reports.json (what tests seed)."""
    return {
        "id": str(report_id),
        "account_id": str(account_id),
        "target_account_id": str(target_account_id),
        **fields,
    }


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


def error(status: int, message: str) -> Answer:
    return Answer(status, {"error": message}, {})


@contextmanager
def admin_data() -> Iterator[dict[str, Any]]:
    fd = os.open(state_path(".admin.lock"), os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        data = read_json(ADMIN, {})
        data.setdefault("accounts", [])
        data.setdefault("reports", [])
        before = repr(data)
        yield data
        if repr(data) != before:
            write_json(ADMIN, data)
    finally:
        os.close(fd)


# -- entity shapes ---------------------------------------------------------------


def role(name: str | None) -> dict[str, Any]:
    if not name:
        return {"id": "-99", "name": "", "color": "", "permissions": "65536", "highlighted": False}
    return {
        "id": ROLE_IDS.get(name, "4"),
        "name": name,
        "color": "",
        "permissions": "1" if name == "Owner" else "1048575",
        "highlighted": True,
    }


def account_entity(record: Mapping[str, Any], web_domain: str) -> dict[str, Any]:
    username = record["username"]
    base = f"https://{web_domain}"
    return {
        "id": record["id"],
        "username": username,
        "acct": username if not record.get("domain") else f"{username}@{record['domain']}",
        "display_name": record.get("display_name", ""),
        "locked": False,
        "bot": False,
        "discoverable": None,
        "group": False,
        "created_at": record.get("created_at", "2025-01-01T00:00:00.000Z"),
        "note": "",
        "url": f"{base}/@{username}",
        "avatar": f"{base}/avatars/original/missing.png",
        "avatar_static": f"{base}/avatars/original/missing.png",
        "header": f"{base}/headers/original/missing.png",
        "header_static": f"{base}/headers/original/missing.png",
        "followers_count": 0,
        "following_count": 0,
        "statuses_count": 0,
        "last_status_at": None,
        "emojis": [],
        "fields": [],
    }


def admin_account(record: Mapping[str, Any], web_domain: str) -> dict[str, Any]:
    return {
        "id": record["id"],
        "username": record["username"],
        "domain": record.get("domain"),
        "created_at": record.get("created_at", "2025-01-01T00:00:00.000Z"),
        "email": record.get("email", f"{record['username']}@{web_domain}"),
        "ip": record.get("ip", "127.0.0.1"),
        "ips": [],
        "locale": record.get("locale", "en"),
        "invite_request": None,
        "role": role(record.get("role")),
        "confirmed": record.get("confirmed", True),
        "approved": record.get("approved", True),
        "disabled": record.get("disabled", False),
        "silenced": record.get("silenced", False),
        "suspended": record.get("suspended", False),
        "sensitized": record.get("sensitized", False),
        "account": account_entity(record, web_domain),
    }


def report_entity(report: Mapping[str, Any], data: Mapping[str, Any], web: str) -> dict[str, Any]:
    accounts = {a["id"]: a for a in data["accounts"]}

    def linked(key: str) -> dict[str, Any] | None:
        account_id = report.get(key)
        if account_id is None:
            return None
        record = accounts.get(str(account_id), account_record(str(account_id), f"user{account_id}"))
        return admin_account(record, web)

    return {
        "id": report["id"],
        "action_taken": report.get("action_taken", False),
        "action_taken_at": report.get("action_taken_at"),
        "category": report.get("category", "other"),
        "comment": report.get("comment", ""),
        "forwarded": report.get("forwarded", False),
        "created_at": report.get("created_at", "2025-01-01T00:00:00.000Z"),
        "updated_at": report.get(
            "updated_at", report.get("created_at", "2025-01-01T00:00:00.000Z")
        ),
        "account": linked("account_id"),
        "target_account": linked("target_account_id"),
        "assigned_account": linked("assigned_account_id"),
        "action_taken_by_account": linked("action_taken_by_account_id"),
        "statuses": [],
        "rules": [{"id": str(r), "text": f"Rule {r}"} for r in report.get("rule_ids", [])],
    }


# -- authorisation ---------------------------------------------------------------


def scope_covers(granted: str, required: str) -> bool:
    return required == granted or required.startswith(granted + ":")


def authorize(
    headers: Mapping[str, str], scope: str, permission: str, data: Mapping[str, Any]
) -> tuple[str, Answer | None]:
    """(account id of the token, or the error to answer)."""
    match = re.fullmatch(r"Bearer\s+(\S+)", headers.get("Authorization", ""))
    tokens = read_json(TOKENS, {})
    token = tokens.get(match.group(1)) if match else None
    if token is None:
        return "", error(401, "The access token is invalid")
    if not any(scope_covers(s, scope) for s in token.get("scopes", [])):
        return "", error(403, "This action is outside the authorized scopes")
    account_id = str(token.get("account_id", ""))
    record = next((a for a in data["accounts"] if a["id"] == account_id), {})
    role_name = record.get("role") or token.get("role")
    if permission not in ROLE_PERMISSIONS.get(role_name or "", set()):
        return "", error(403, "This action is not allowed")
    return account_id, None


# -- endpoints -------------------------------------------------------------------


def paginate(items: list[dict[str, Any]], query: Mapping[str, str], base: str) -> Answer:
    items = sorted(
        items, key=lambda r: int(r["id"]) if r["id"].isdigit() else r["id"], reverse=True
    )
    if "max_id" in query:
        items = [r for r in items if int(r["id"]) < int(query["max_id"])]
    if "since_id" in query:
        items = [r for r in items if int(r["id"]) > int(query["since_id"])]
    if "min_id" in query:
        items = sorted(
            (r for r in items if int(r["id"]) > int(query["min_id"])), key=lambda r: int(r["id"])
        )
    limit = max(1, min(int(query.get("limit", "100")), 200))
    page = items[:limit]
    headers = {}
    if page:
        ids = [int(r["id"]) for r in page]
        headers["Link"] = (
            f'<{base}?limit={limit}&max_id={min(ids)}>; rel="next", '
            f'<{base}?limit={limit}&min_id={max(ids)}>; rel="prev"'
        )
    return Answer(200, page, headers)


def list_reports(data: dict[str, Any], query: Mapping[str, str], web: str) -> Answer:
    want_resolved = query.get("resolved", "").lower() in ("true", "1")
    reports = [r for r in data["reports"] if bool(r.get("action_taken")) == want_resolved]
    for key in ("account_id", "target_account_id"):
        if key in query:
            reports = [r for r in reports if str(r.get(key)) == query[key]]
    answer = paginate(reports, query, f"https://{web}/api/v1/admin/reports")
    answer.body = [report_entity(r, data, web) for r in answer.body]
    return answer


def change_report(report: dict[str, Any], action: str, actor: str, form: Mapping[str, Any]) -> None:
    stamp = now()
    if action == "assign_to_self":
        report["assigned_account_id"] = actor
    elif action == "unassign":
        report["assigned_account_id"] = None
    elif action == "resolve":
        resolve(report, actor, stamp)
    elif action == "reopen":
        report.update(action_taken=False, action_taken_at=None, action_taken_by_account_id=None)
    elif action == "update":
        if "category" in form:
            report["category"] = form["category"]
        if "rule_ids" in form:
            report["rule_ids"] = list(form["rule_ids"])
    report["updated_at"] = stamp


def resolve(report: dict[str, Any], actor: str, stamp: str) -> None:
    if not report.get("action_taken"):
        report.update(action_taken=True, action_taken_at=stamp, action_taken_by_account_id=actor)


ACCOUNT_FLAGS = {
    "sensitive": "sensitized",
    "disable": "disabled",
    "silence": "silenced",
    "suspend": "suspended",
}


def account_action(
    data: dict[str, Any], account_id: str, actor: str, form: Mapping[str, Any]
) -> Answer:
    account = next((a for a in data["accounts"] if a["id"] == account_id), None)
    if account is None:
        return error(404, "Record not found")
    kind = str(form.get("type", "none"))
    if kind not in ACTION_TYPES:
        return error(422, "Validation failed: Type is not included in the list")
    report_id = str(form.get("report_id") or "")
    report = next((r for r in data["reports"] if r["id"] == report_id), None) if report_id else None
    if report_id and report is None:
        return error(404, "Record not found")
    if kind in ACCOUNT_FLAGS:
        account[ACCOUNT_FLAGS[kind]] = True
    stamp = now()
    # As Admin::AccountAction: "none" resolves only the report given; any
    # other action resolves every open report about the account.
    if kind == "none":
        targets = [report] if report else []
    else:
        targets = [r for r in data["reports"] if str(r.get("target_account_id")) == account_id]
    for target in targets:
        resolve(target, actor, stamp)
        target["updated_at"] = stamp
    account.setdefault("actions", []).append(
        {
            "type": kind,
            "report_id": report_id or None,
            "at": stamp,
            "by": actor,
            "text": form.get("text", ""),
        }
    )
    return Answer(200, {}, {})


REPORT = re.compile(r"/api/v1/admin/reports/([^/]+)(?:/(assign_to_self|unassign|resolve|reopen))?")
ACCOUNT = re.compile(r"/api/v1/admin/accounts/([^/]+)(/action)?")


def handle(
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    form: Mapping[str, Any],
    web: str,
) -> Answer | None:
    """Answer an admin API request, or None when the path is not one of these."""
    if path == "/api/v1/admin/reports" or REPORT.fullmatch(path):
        scope_kind, permission = "reports", "manage_reports"
    elif ACCOUNT.fullmatch(path):
        scope_kind, permission = "accounts", "manage_users"
    else:
        return None
    scope = f"admin:{'read' if method == 'GET' else 'write'}:{scope_kind}"
    with admin_data() as data:
        actor, denied = authorize(headers, scope, permission, data)
        if denied:
            return denied
        return route(method, path, query, form, data, actor, web)


def route(
    method: str,
    path: str,
    query: Mapping[str, str],
    form: Mapping[str, Any],
    data: dict[str, Any],
    actor: str,
    web: str,
) -> Answer:
    if path == "/api/v1/admin/reports" and method == "GET":
        return list_reports(data, query, web)
    report_match = REPORT.fullmatch(path)
    if report_match:
        report = next((r for r in data["reports"] if r["id"] == report_match.group(1)), None)
        if report is None:
            return error(404, "Record not found")
        action = report_match.group(2)
        if method == "GET" and action is None:
            return Answer(200, report_entity(report, data, web), {})
        if (method, action) == ("PUT", None) or (method == "POST" and action):
            change_report(report, action or "update", actor, form)
            return Answer(200, report_entity(report, data, web), {})
        return error(405, "Method not allowed")
    account_match = ACCOUNT.fullmatch(path)
    assert account_match is not None
    if method == "POST" and account_match.group(2):
        return account_action(data, account_match.group(1), actor, form)
    if method == "GET" and not account_match.group(2):
        record = next((a for a in data["accounts"] if a["id"] == account_match.group(1)), None)
        if record is None:
            return error(404, "Record not found")
        return Answer(200, admin_account(record, web), {})
    return error(405, "Method not allowed")
