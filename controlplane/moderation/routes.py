"""Moderation teams (staff) and a server's moderation staffing (staff assign,
the organisation reads)."""

from __future__ import annotations

import uuid
from dataclasses import asdict

from fastapi import APIRouter, Response

from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.moderation import service, teams
from controlplane.moderation.schemas import (
    AssignmentIn,
    MemberIn,
    StaffingOut,
    TeamIn,
    TeamOut,
)
from controlplane.pagination import Page

router = APIRouter(prefix=API_PREFIX, tags=["moderation staffing"])


def _spec(body: TeamIn) -> teams.TeamSpec:
    return teams.TeamSpec(
        name=body.name,
        languages=list(body.languages),
        timezone=body.timezone,
        coverage=[window.model_dump() for window in body.coverage],
    )


def _team_out(view: teams.TeamView, jobs: list[uuid.UUID] | None = None) -> TeamOut:
    return TeamOut.model_validate({**asdict(view), "jobs": jobs or []})


@router.get("/moderation/teams", response_model=Page[TeamOut])
def list_teams(principal: PrincipalDep, session: SessionDep, page: PageDep) -> Page[TeamOut]:
    """Every moderation team with its members (staff)."""
    views, cursor = teams.list_teams(session, principal, page)
    return Page(items=[_team_out(v) for v in views], next_cursor=cursor)


@router.post("/moderation/teams", response_model=TeamOut, status_code=201)
def create_team(body: TeamIn, principal: PrincipalDep, session: SessionDep) -> TeamOut:
    """A new team; 409 `already-exists` when the name is taken."""
    return _team_out(teams.create_team(session, principal, _spec(body)))


@router.get("/moderation/teams/{team_id}", response_model=TeamOut)
def get_team(team_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> TeamOut:
    return _team_out(teams.get_team(session, principal, team_id))


@router.put("/moderation/teams/{team_id}", response_model=TeamOut)
def update_team(
    team_id: uuid.UUID, body: TeamIn, principal: PrincipalDep, session: SessionDep
) -> TeamOut:
    """Replace the team's name, languages, time zone and coverage."""
    return _team_out(teams.update_team(session, principal, team_id, _spec(body)))


@router.delete("/moderation/teams/{team_id}", status_code=204)
def delete_team(team_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Response:
    """409 `moderation-team-in-use` while the team staffs a server."""
    teams.delete_team(session, principal, team_id)
    return Response(status_code=204)


@router.post("/moderation/teams/{team_id}/members", response_model=TeamOut)
def add_member(
    team_id: uuid.UUID, body: MemberIn, principal: PrincipalDep, session: SessionDep
) -> TeamOut:
    """Add a staff user with the Mastodon user name they moderate under (or
    change that name). Each server the team staffs gets a `moderators` job,
    listed in `jobs`, that gives them access there."""
    view, jobs = teams.add_member(session, principal, team_id, body.user_id, body.mastodon_username)
    return _team_out(view, jobs)


@router.delete("/moderation/teams/{team_id}/members/{user_id}", response_model=TeamOut)
def remove_member(
    team_id: uuid.UUID, user_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> TeamOut:
    """Remove a member; `moderators` jobs take their access away."""
    view, jobs = teams.remove_member(session, principal, team_id, user_id)
    return _team_out(view, jobs)


@router.get("/servers/{server_id}/moderation", response_model=StaffingOut)
def get_staffing(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> StaffingOut:
    """Whether moderation is staffed, by which team (languages, hours), the
    agreed response time and the moderators' account names."""
    return StaffingOut.model_validate(asdict(service.get_staffing(session, principal, server_id)))


@router.put("/servers/{server_id}/moderation", response_model=StaffingOut)
def assign(
    server_id: uuid.UUID, body: AssignmentIn, principal: PrincipalDep, session: SessionDep
) -> StaffingOut:
    """Assign a team (staff). 409 `moderation-not-ordered` without the
    moderation add-on in force. A `moderators` job (`job_id`) gives the
    team's members access on the server."""
    view = service.assign(session, principal, server_id, body.team_id, body.minutes)
    return StaffingOut.model_validate(asdict(view))


@router.delete("/servers/{server_id}/moderation", response_model=StaffingOut)
def unassign(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> StaffingOut:
    """End the assignment (staff); a `moderators` job (`job_id`) takes the
    access away on the server and deletes the tokens Herd held."""
    return StaffingOut.model_validate(asdict(service.unassign(session, principal, server_id)))
