"""Staff acting on a report from Herd: assign to self, unassign, resolve,
reopen, or an action on the reported account.

Each call goes to the server's admin API with the acting person's own
moderator token, so Mastodon records who did it; someone without granted
access on that server gets a 409, not a borrowed token. Herd's copy is
updated from the server's answer, and the audit log records the call.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import StaffPerm
from controlplane.moderation import access
from controlplane.moderation.mastodon_admin import ActionType, AdminApiError, ReportChange
from controlplane.moderation.queue import client_for, upsert
from controlplane.moderation.reports import ModerationReport
from controlplane.problems import Conflict, HerdError, NotFound
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow


class NoModeratorAccess(Conflict):
    kind, title = "no-moderator-access", "No moderator access on this server"


class ServerRefused(HerdError):
    status, kind, title = 502, "moderation-server-error", "The Mastodon server did not do it"


def _report(session: Session, principal: Principal, report_id: uuid.UUID) -> ModerationReport:
    principal.require_staff(StaffPerm.fleet_read)
    row = session.get(ModerationReport, report_id)
    if row is None:
        raise NotFound("report not found")
    return row


def _token(session: Session, principal: Principal, server: Server) -> str:
    token = access.server_token(session, server.id, principal.user_id)
    if token is None:
        raise NoModeratorAccess(
            f"you have no granted moderator access on {server.domain}; "
            "a team with you in it must be assigned to the server first",
            server_id=str(server.id),
        )
    return token


def _server(session: Session, row: ModerationReport) -> Server:
    server = session.get(Server, row.server_id)
    assert server is not None  # the report's foreign key cascades
    return server


def change_report(
    session: Session, principal: Principal, report_id: uuid.UUID, change: ReportChange
) -> ModerationReport:
    row = _report(session, principal, report_id)
    server = _server(session, row)
    token = _token(session, principal, server)
    try:
        with client_for(session, server, token) as api:
            answer = api.change(row.remote_id, change)
    except AdminApiError as exc:
        raise ServerRefused(f"{server.domain}: {exc}") from None
    row = upsert(session, server.id, answer, utcnow(), authoritative=True)
    _audit(session, principal, server, row, f"moderation.report.{change}", {})
    return row


def act_on_account(
    session: Session,
    principal: Principal,
    report_id: uuid.UUID,
    kind: ActionType,
    text: str,
) -> ModerationReport:
    """Admin::AccountAction on the reported account, tied to the report (so
    Mastodon resolves it, and for any kind but "none" every open report
    about the account: the next pull brings those in)."""
    row = _report(session, principal, report_id)
    server = _server(session, row)
    token = _token(session, principal, server)
    try:
        with client_for(session, server, token) as api:
            api.account_action(row.target_account_id, kind, text, report_id=row.remote_id)
            answer = api.report(row.remote_id)
    except AdminApiError as exc:
        raise ServerRefused(f"{server.domain}: {exc}") from None
    row = upsert(session, server.id, answer, utcnow(), authoritative=True)
    # The text goes to the account's owner by Mastodon; the log keeps the kind.
    _audit(
        session,
        principal,
        server,
        row,
        "moderation.account.action",
        {"type": kind, "account_id": row.target_account_id, "acct": row.target_acct},
    )
    return row


def _audit(
    session: Session,
    principal: Principal,
    server: Server,
    row: ModerationReport,
    action: str,
    details: dict[str, str],
) -> None:
    audit.record(
        session,
        principal,
        action,
        "moderation_report",
        row.id,
        server.organisation_id,
        {"server_id": str(server.id), "report": row.remote_id, **details},
    )
