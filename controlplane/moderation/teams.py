"""Moderation teams as staff manage them: name, languages, coverage hours
in a time zone, and members (staff users with the Mastodon user name each
moderates under). A change of members starts a `moderators` job on every
server the team staffs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import StaffPerm
from controlplane.moderation.errors import TeamInUse
from controlplane.moderation.models import Assignment, ModerationTeam, TeamMember
from controlplane.moderation.sync import request_sync
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import AlreadyExists, InvalidInput, NotFound
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import User


@dataclass(frozen=True)
class TeamSpec:
    name: str
    languages: list[str]
    timezone: str
    coverage: list[dict[str, Any]]


@dataclass(frozen=True)
class MemberView:
    user_id: uuid.UUID
    email: str
    name: str
    mastodon_username: str


@dataclass(frozen=True)
class TeamView:
    id: uuid.UUID
    name: str
    languages: list[str]
    timezone: str
    coverage: list[dict[str, Any]]
    members: list[MemberView]
    servers: int
    created_at: Any
    updated_at: Any


def _team(session: Session, team_id: uuid.UUID) -> ModerationTeam:
    team = session.get(ModerationTeam, team_id)
    if team is None:
        raise NotFound("moderation team not found")
    return team


def _name_free(session: Session, name: str, team_id: uuid.UUID | None = None) -> None:
    other = session.exec(
        select(ModerationTeam.id).where(func.lower(ModerationTeam.name) == name.lower())
    ).first()
    if other is not None and other != team_id:
        raise AlreadyExists(f"there is a moderation team named '{name}' already")


def _views(session: Session, teams: list[ModerationTeam]) -> list[TeamView]:
    """Views of several teams in two queries, whatever their number."""
    ids = [team.id for team in teams]
    members: dict[uuid.UUID, list[MemberView]] = {i: [] for i in ids}
    for member, user in session.exec(
        select(TeamMember, User)
        .join(User, col(User.id) == TeamMember.user_id)
        .where(col(TeamMember.team_id).in_(ids))
        .order_by(col(TeamMember.mastodon_username))
    ):
        members[member.team_id].append(
            MemberView(user.id, user.email, user.name, member.mastodon_username)
        )
    counts = dict(
        session.exec(
            select(Assignment.team_id, func.count())
            .where(col(Assignment.team_id).in_(ids))
            .group_by(col(Assignment.team_id))
        ).all()
    )
    return [
        TeamView(
            team.id,
            team.name,
            list(team.languages),
            team.timezone,
            list(team.coverage),
            members[team.id],
            int(counts.get(team.id, 0)),
            team.created_at,
            team.updated_at,
        )
        for team in teams
    ]


def view(session: Session, team: ModerationTeam) -> TeamView:
    return _views(session, [team])[0]


def list_teams(
    session: Session, principal: Principal, page: PageRequest
) -> tuple[list[TeamView], str | None]:
    principal.require_staff(StaffPerm.fleet_read)
    rows = session.exec(paginate(select(ModerationTeam), ModerationTeam.id, page)).all()
    teams, cursor = finish_page(rows, page, lambda team: team.id)
    return _views(session, teams), cursor


def get_team(session: Session, principal: Principal, team_id: uuid.UUID) -> TeamView:
    principal.require_staff(StaffPerm.fleet_read)
    return view(session, _team(session, team_id))


def create_team(session: Session, principal: Principal, spec: TeamSpec) -> TeamView:
    principal.require_staff(StaffPerm.moderation_manage)
    _name_free(session, spec.name)
    team = ModerationTeam(
        name=spec.name, languages=spec.languages, timezone=spec.timezone, coverage=spec.coverage
    )
    session.add(team)
    session.flush()
    audit.record(
        session,
        principal,
        "moderation.team_create",
        "moderation_team",
        team.id,
        None,
        {"name": team.name, "languages": team.languages, "timezone": team.timezone},
    )
    return view(session, team)


def update_team(
    session: Session, principal: Principal, team_id: uuid.UUID, spec: TeamSpec
) -> TeamView:
    principal.require_staff(StaffPerm.moderation_manage)
    team = _team(session, team_id)
    _name_free(session, spec.name, team.id)
    team.name, team.languages, team.timezone = spec.name, spec.languages, spec.timezone
    team.coverage, team.updated_at = spec.coverage, utcnow()
    session.add(team)
    audit.record(
        session,
        principal,
        "moderation.team_update",
        "moderation_team",
        team.id,
        None,
        {"name": team.name, "languages": team.languages, "timezone": team.timezone},
    )
    return view(session, team)


def delete_team(session: Session, principal: Principal, team_id: uuid.UUID) -> None:
    principal.require_staff(StaffPerm.moderation_manage)
    team = _team(session, team_id)
    staffed = session.exec(select(func.count()).where(Assignment.team_id == team.id)).one()
    if staffed:
        raise TeamInUse(f"the team staffs {staffed} server(s); unassign it from them first")
    audit.record(
        session,
        principal,
        "moderation.team_delete",
        "moderation_team",
        team.id,
        None,
        {"name": team.name},
    )
    session.delete(team)


def _sync_servers(session: Session, team_id: uuid.UUID) -> list[uuid.UUID]:
    servers = session.exec(select(Assignment.server_id).where(Assignment.team_id == team_id)).all()
    return [request_sync(session, server_id).id for server_id in servers]


def add_member(
    session: Session,
    principal: Principal,
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    mastodon_username: str,
) -> tuple[TeamView, list[uuid.UUID]]:
    """Add a staff user to the team (or change the user name they moderate
    under); every server the team staffs gets a `moderators` job."""
    principal.require_staff(StaffPerm.moderation_manage)
    team = _team(session, team_id)
    user = session.get(User, user_id)
    if user is None or user.staff_role is None or not user.is_active:
        raise InvalidInput("moderators are active staff users; this user is not one")
    taken = session.exec(
        select(TeamMember).where(
            TeamMember.team_id == team.id,
            TeamMember.mastodon_username == mastodon_username,
            TeamMember.user_id != user.id,
        )
    ).first()
    if taken is not None:
        raise AlreadyExists(f"'{mastodon_username}' is another member's user name in this team")
    member = session.exec(
        select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user.id)
    ).first()
    if member is not None and member.mastodon_username == mastodon_username:
        return view(session, team), []  # as asked already: nothing new
    if member is None:
        member = TeamMember(team_id=team.id, user_id=user.id, mastodon_username=mastodon_username)
    member.mastodon_username = mastodon_username
    session.add(member)
    team.updated_at = utcnow()
    session.add(team)
    session.flush()
    audit.record(
        session,
        principal,
        "moderation.member_add",
        "moderation_team",
        team.id,
        None,
        {"user_id": str(user.id), "mastodon_username": mastodon_username},
    )
    return view(session, team), _sync_servers(session, team.id)


def remove_member(
    session: Session, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID
) -> tuple[TeamView, list[uuid.UUID]]:
    principal.require_staff(StaffPerm.moderation_manage)
    team = _team(session, team_id)
    member = session.exec(
        select(TeamMember).where(TeamMember.team_id == team.id, TeamMember.user_id == user_id)
    ).first()
    if member is None:
        raise NotFound("the user is not a member of this team")
    session.delete(member)
    team.updated_at = utcnow()
    session.add(team)
    session.flush()
    audit.record(
        session,
        principal,
        "moderation.member_remove",
        "moderation_team",
        team.id,
        None,
        {"user_id": str(user_id), "mastodon_username": member.mastodon_username},
    )
    return view(session, team), _sync_servers(session, team.id)
