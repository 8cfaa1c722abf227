from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field, StringConstraints

from controlplane.auth.principal import Principal
from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.jobs.schemas import JobOut
from controlplane.pagination import Page
from controlplane.schemas import Input
from controlplane.servers import service, upgrades
from controlplane.servers.domains import unicode_form
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.schemas import (
    OptionalReason,
    ServerEventOut,
    ServerOrder,
    ServerOut,
    ServerUpdate,
    StateChange,
)
from controlplane.servers.service import ServerFilter, ServerView

router = APIRouter(prefix=API_PREFIX, tags=["servers"])


def _out(view: ServerView, principal: Principal) -> ServerOut:
    server = view.server
    return ServerOut(
        **server.model_dump(exclude={"plan_id", "host_id"}),
        domain_unicode=unicode_form(server.domain),
        plan=view.plan_code,
        # Where a server runs is the provider's business, not the customer's.
        host_id=server.host_id if principal.is_staff else None,
    )


def _filters(
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
    state: Annotated[list[ServerState] | None, Query(max_length=10)] = None,
    plan: Annotated[str | None, Query(max_length=40)] = None,
    host_id: Annotated[uuid.UUID | None, Query(description="staff only")] = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the domain")] = None,
) -> ServerFilter:
    return ServerFilter(
        organisation_id=organisation_id,
        states=state or (),
        plan=plan,
        host_id=host_id,
        domain_contains=q,
    )


@router.get("/servers", response_model=Page[ServerOut])
def list_servers(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
    state: Annotated[list[ServerState] | None, Query(max_length=10)] = None,
    plan: Annotated[str | None, Query(max_length=40)] = None,
    host_id: Annotated[uuid.UUID | None, Query(description="staff only")] = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the domain")] = None,
) -> Page[ServerOut]:
    filters = _filters(organisation_id, state, plan, host_id, q)
    views, cursor = service.list_servers(session, principal, filters, page)
    return Page(items=[_out(v, principal) for v in views], next_cursor=cursor)


@router.get("/organisations/{org_id}/servers", response_model=Page[ServerOut])
def list_organisation_servers(
    org_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    state: Annotated[list[ServerState] | None, Query(max_length=10)] = None,
    plan: Annotated[str | None, Query(max_length=40)] = None,
    q: Annotated[str | None, Query(max_length=100, description="part of the domain")] = None,
) -> Page[ServerOut]:
    filters = _filters(None, state, plan, None, q)
    views, cursor = service.list_organisation_servers(session, principal, org_id, filters, page)
    return Page(items=[_out(v, principal) for v in views], next_cursor=cursor)


@router.post("/organisations/{org_id}/servers", response_model=ServerOut, status_code=201)
def order_server(
    org_id: uuid.UUID, data: ServerOrder, principal: PrincipalDep, session: SessionDep
) -> ServerOut:
    return _out(service.order(session, principal, org_id, data), principal)


@router.get("/servers/{server_id}", response_model=ServerOut)
def get_server(server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> ServerOut:
    return _out(service.get(session, principal, server_id), principal)


@router.patch("/servers/{server_id}", response_model=ServerOut)
def update_server(
    server_id: uuid.UUID, data: ServerUpdate, principal: PrincipalDep, session: SessionDep
) -> ServerOut:
    return _out(service.update_settings(session, principal, server_id, data), principal)


@router.post("/servers/{server_id}/cancel", response_model=ServerOut)
def cancel_server(
    server_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    data: OptionalReason | None = None,
) -> ServerOut:
    reason = data.reason if data else None
    return _out(service.cancel(session, principal, server_id, reason), principal)


@router.post("/servers/{server_id}/suspend", response_model=ServerOut)
def suspend_server(
    server_id: uuid.UUID, data: StateChange, principal: PrincipalDep, session: SessionDep
) -> ServerOut:
    view = service.staff_transition(session, principal, server_id, "suspend", data.reason)
    return _out(view, principal)


def _staff_event_route(event: str, doc: str) -> None:
    """Staff actions that take an optional reason differ only in their event."""

    def endpoint(
        server_id: uuid.UUID,
        principal: PrincipalDep,
        session: SessionDep,
        data: OptionalReason | None = None,
    ) -> ServerOut:
        reason = data.reason if data else None
        return _out(
            service.staff_transition(session, principal, server_id, event, reason), principal
        )

    endpoint.__name__, endpoint.__doc__ = f"{event}_server", doc
    router.post(f"/servers/{{server_id}}/{event}", response_model=ServerOut)(endpoint)


for _event, _doc in (
    ("resume", "Staff: bring a suspended server back."),
    (
        "approve",
        "Staff: provision an order without waiting for payment (trials, contracts "
        "billed outside Stripe).",
    ),
    (
        "retry",
        "Staff: provision a failed server again; each step finds what exists, so "
        "nothing is made twice.",
    ),
):
    _staff_event_route(_event, _doc)


class UpgradeRequest(Input):
    # The format is checked by the service, which rollouts call too.
    version: Annotated[str, StringConstraints(min_length=1, max_length=60)] = Field(
        description="The release tag to go to: vMAJOR.MINOR.PATCH, optionally with a "
        "pre-release suffix; newer than the one the server runs.",
        examples=["v4.6.0"],
    )


@router.post("/servers/{server_id}/upgrade", response_model=JobOut, status_code=202)
def upgrade_server(
    server_id: uuid.UUID, data: UpgradeRequest, principal: PrincipalDep, session: SessionDep
) -> JobOut:
    """Staff: upgrade an active server to a newer Mastodon release. The job
    backs up the database first and rolls the server back to the release it
    ran when the new one fails its health gate."""
    job = upgrades.start_upgrade(session, principal, server_id, data.version)
    return JobOut.model_validate(job)


@router.get("/servers/{server_id}/events", response_model=Page[ServerEventOut])
def list_server_events(
    server_id: uuid.UUID, principal: PrincipalDep, session: SessionDep, page: PageDep
) -> Page[ServerEventOut]:
    items, cursor = service.list_events(session, principal, server_id, page)
    return Page(items=[ServerEventOut.model_validate(e) for e in items], next_cursor=cursor)
