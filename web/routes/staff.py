"""The staff console: the fleet table, hosts, jobs and the fleet's audit log.
Every page asks the same service the API does, which refuses anyone
without the staff role it needs."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from controlplane.audit import service as audit
from controlplane.auth.roles import StaffPerm
from controlplane.billing import service as plans
from controlplane.deps import SessionDep
from controlplane.fleet import service as fleet
from controlplane.jobs import service as jobs
from controlplane.jobs.models import JobState
from controlplane.pagination import PageRequest, page_request
from controlplane.servers import service as servers
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.service import ServerFilter
from web import queries
from web.routing import PrincipalDep, WebRoute, parse_id, render

router = APIRouter(route_class=WebRoute, include_in_schema=False)
LOG_LIMIT = 1000


@router.get("/staff/fleet")
def fleet_table(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    q: Annotated[str, Query(max_length=100)] = "",
    state: str = "",
    plan: Annotated[str, Query(max_length=40)] = "",
    organisation: str = "",
    cursor: str | None = None,
    limit: Annotated[int | None, Query(ge=1, le=500)] = None,
) -> Response:
    principal.require_staff(StaffPerm.fleet_read)
    chosen_state = ServerState(state) if state in ServerState.__members__ else None
    filters = ServerFilter(
        organisation_id=parse_id(organisation),
        states=(chosen_state,) if chosen_state else (),
        plan=plan or None,
        domain_contains=q or None,
    )
    page = page_request(cursor, limit)
    views, next_cursor = servers.list_servers(session, principal, filters, page)
    offered, _ = plans.list_plans(session, principal, PageRequest(limit=100), True)
    return render(
        request,
        "staff/fleet.html",
        {
            "views": views,
            "next_cursor": next_cursor,
            "org_names": queries.organisation_names(
                session, (v.server.organisation_id for v in views)
            ),
            "host_names": queries.host_names(session, (v.server.host_id for v in views)),
            "states": [s.value for s in ServerState],
            "plans": [p.code for p in offered],
            "filters": {"q": q, "state": state, "plan": plan, "organisation": organisation},
            "limit": page.limit,
        },
    )


@router.get("/staff/hosts")
def host_list(
    request: Request, principal: PrincipalDep, session: SessionDep, cursor: str | None = None
) -> Response:
    hosts, next_cursor = fleet.list_hosts(session, principal, page_request(cursor, None))
    return render(request, "staff/hosts.html", {"hosts": hosts, "next_cursor": next_cursor})


@router.get("/staff/jobs")
def job_list(
    request: Request,
    principal: PrincipalDep,
    session: SessionDep,
    state: str = "",
    cursor: str | None = None,
) -> Response:
    chosen = JobState(state) if state in JobState.__members__ else None
    found, next_cursor = jobs.list_jobs(
        session, principal, page_request(cursor, None), state=chosen
    )
    return render(
        request,
        "staff/jobs.html",
        {
            "jobs": found,
            "next_cursor": next_cursor,
            "state": state,
            "states": [s.value for s in JobState],
        },
    )


@router.get("/jobs/{job_id}")
def job_page(
    request: Request, job_id: uuid.UUID, principal: PrincipalDep, session: SessionDep
) -> Response:
    job, steps = jobs.get_job(session, principal, job_id)
    log, _ = jobs.list_events(session, principal, job.id, PageRequest(limit=LOG_LIMIT))
    return render(request, "job.html", {"job": job, "steps": steps, "log": log})


@router.get("/staff/audit")
def fleet_audit(
    request: Request, principal: PrincipalDep, session: SessionDep, cursor: str | None = None
) -> Response:
    entries, next_cursor = audit.list_entries(
        session, principal, page_request(cursor, None), None, fleet_wide=True
    )
    return render(
        request,
        "audit.html",
        {"org": None, "entries": entries, "next_cursor": next_cursor, "fleet": True},
    )
