"""Staffing a server: staff assign a moderation team to a server that has
the moderation add-on (one team per server, with the agreed response time)
and unassign it; the organisation reads who staffs its server. Every change
starts a `moderators` job that brings the server's moderator access to it
(controlplane/moderation/sync.py); so does the add-on ending."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.billing.addons import moderation_active
from controlplane.moderation.errors import ModerationNotOrdered
from controlplane.moderation.models import AccessState, Assignment, ModerationTeam, ModeratorAccess
from controlplane.moderation.sync import LIVE, request_sync
from controlplane.problems import InvalidInput, NotFound
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow


@dataclass(frozen=True)
class StaffingView:
    server_id: uuid.UUID
    staffed: bool
    addon_active: bool
    team: dict[str, Any] | None
    response_minutes: int | None
    assigned_at: Any
    moderators: list[dict[str, str]]
    job_id: uuid.UUID | None = None


def _server(session: Session, principal: Principal, server_id: uuid.UUID) -> Server:
    server = session.get(Server, server_id)
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("server not found")
    return server


def staffing(session: Session, server: Server, job_id: uuid.UUID | None = None) -> StaffingView:
    assignment = session.get(Assignment, server.id)
    team = session.get(ModerationTeam, assignment.team_id) if assignment else None
    active = moderation_active(session, server.id)
    rows = session.exec(
        select(ModeratorAccess.mastodon_username, ModeratorAccess.state)
        .where(
            ModeratorAccess.server_id == server.id,
            col(ModeratorAccess.state) != AccessState.revoked,
        )
        .order_by(col(ModeratorAccess.mastodon_username))
    ).all()
    return StaffingView(
        server_id=server.id,
        staffed=assignment is not None and active,
        addon_active=active,
        team=(
            {
                "name": team.name,
                "languages": team.languages,
                "timezone": team.timezone,
                "coverage": team.coverage,
            }
            if team
            else None
        ),
        response_minutes=assignment.response_minutes if assignment else None,
        assigned_at=assignment.assigned_at if assignment else None,
        moderators=[{"mastodon_username": name, "state": state.value} for name, state in rows],
        job_id=job_id,
    )


def get_staffing(session: Session, principal: Principal, server_id: uuid.UUID) -> StaffingView:
    """What the organisation (any member) and staff see: the team, its
    languages and hours, the response time, moderators' account names."""
    server = _server(session, principal, server_id)
    principal.require(server.organisation_id, Perm.servers_read, "server")
    return staffing(session, server)


def assign(
    session: Session,
    principal: Principal,
    server_id: uuid.UUID,
    team_id: uuid.UUID,
    response_minutes: int,
) -> StaffingView:
    principal.require_staff(StaffPerm.moderation_manage)
    server = _server(session, principal, server_id)
    if session.get(ModerationTeam, team_id) is None:
        raise InvalidInput("there is no moderation team with this id")
    if not moderation_active(session, server.id):
        raise ModerationNotOrdered(
            "the server has no moderation staffing add-on in force; the organisation orders it"
        )
    assignment = session.get(Assignment, server.id)
    before = (assignment.team_id, assignment.response_minutes) if assignment else None
    if before == (team_id, response_minutes):
        return staffing(session, server)  # as it is: nothing new
    if assignment is None:
        assignment = Assignment(server_id=server.id, team_id=team_id, response_minutes=0)
    assignment.team_id, assignment.response_minutes = team_id, response_minutes
    assignment.assigned_by, assignment.assigned_at = principal.user_id, utcnow()
    session.add(assignment)
    session.flush()
    audit.record(
        session,
        principal,
        "moderation.assign",
        "server",
        server.id,
        server.organisation_id,
        {"team_id": str(team_id), "response_minutes": response_minutes},
    )
    job_id = None
    if before is None or before[0] != team_id:
        job_id = request_sync(session, server.id).id
    return staffing(session, server, job_id)


def unassign(session: Session, principal: Principal, server_id: uuid.UUID) -> StaffingView:
    principal.require_staff(StaffPerm.moderation_manage)
    server = _server(session, principal, server_id)
    assignment = session.get(Assignment, server.id)
    if assignment is None:
        raise NotFound("no moderation team is assigned to this server")
    _end_assignment(session, principal, server, assignment, None)
    return staffing(session, server, request_sync(session, server.id).id)


def _end_assignment(
    session: Session,
    principal: Principal | None,
    server: Server,
    assignment: Assignment,
    reason: str | None,
) -> None:
    details: dict[str, Any] = {"team_id": str(assignment.team_id)}
    if reason:
        details["reason"] = reason
    audit.record(
        session,
        principal,
        "moderation.unassign",
        "server",
        server.id,
        server.organisation_id,
        details,
        actor_label=None if principal else "billing",
    )
    session.delete(assignment)
    session.flush()


def addon_ended(session: Session, server_id: uuid.UUID) -> None:
    """Called when a server's add-on order ends: without moderation staffing
    in force the team's assignment ends, and a `moderators` job takes the
    access away on the server and in Herd."""
    if moderation_active(session, server_id):
        return
    server = session.get(Server, server_id)
    if server is None:
        return
    assignment = session.get(Assignment, server_id)
    if assignment is not None:
        _end_assignment(session, None, server, assignment, "the moderation add-on ended")
    live = session.exec(
        select(ModeratorAccess.id).where(
            ModeratorAccess.server_id == server_id,
            col(ModeratorAccess.state).in_([*LIVE, AccessState.revoking]),
        )
    ).first()
    if assignment is not None or live is not None:
        request_sync(session, server_id)
