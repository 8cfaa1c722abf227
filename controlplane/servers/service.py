"""Ordering servers, reading them, changing their settings, and moving them
through their lifecycle."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.billing.models import Plan
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import AlreadyExists, InvalidInput, InvalidTransition, NotFound
from controlplane.servers.domains import InvalidDomain, normalise_domain
from controlplane.servers.lifecycle import (
    EDITABLE_STATES,
    Actor,
    ServerState,
    TransitionRefused,
    cancel_event,
    target_state,
)
from controlplane.servers.models import Server, ServerEvent
from controlplane.servers.schemas import ServerOrder, ServerUpdate
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow


@dataclass(frozen=True)
class ServerView:
    server: Server
    plan_code: str


@dataclass(frozen=True)
class ServerFilter:
    organisation_id: uuid.UUID | None = None
    states: Sequence[ServerState] = ()
    plan: str | None = None
    host_id: uuid.UUID | None = None
    domain_contains: str | None = None


def apply_event(
    session: Session,
    server: Server,
    event: str,
    actor: Actor,
    actor_label: str,
    reason: str | None = None,
) -> Server:
    """Move `server` through `event`, or raise InvalidTransition and change
    nothing. The update is a compare-and-set on the state the caller read, so
    two racing requests cannot both succeed from the same state."""
    current = ServerState(server.state)
    try:
        target = target_state(event, current, actor)
    except TransitionRefused as refused:
        raise InvalidTransition(refused.reason, state=current.value, event=event) from refused
    now = utcnow()
    result = session.execute(
        update(Server)
        .where(col(Server.id) == server.id, col(Server.state) == current)
        .values(state=target, state_reason=reason, state_changed_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(
            "the server changed state meanwhile; reload it and try again",
            state=current.value,
            event=event,
        )
    session.add(
        ServerEvent(
            server_id=server.id,
            event=event,
            from_state=current,
            to_state=target,
            reason=reason,
            actor=actor_label,
        )
    )
    server.state, server.state_reason = target, reason
    server.state_changed_at = server.updated_at = now
    return server


def _view(session: Session, server: Server) -> ServerView:
    plan = session.get(Plan, server.plan_id)
    assert plan is not None
    return ServerView(server, plan.code)


def _visible_server(session: Session, principal: Principal, server_id: uuid.UUID) -> Server:
    server = session.get(Server, server_id)
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("server not found")
    return server


def order(
    session: Session, principal: Principal, org_id: uuid.UUID, data: ServerOrder
) -> ServerView:
    principal.require(org_id, Perm.servers_order)
    try:
        domain = normalise_domain(data.domain, get_settings().reserved_domains)
    except InvalidDomain as exc:
        raise InvalidInput(str(exc), field="domain") from exc
    plan = session.exec(select(Plan).where(Plan.code == data.plan, col(Plan.active))).first()
    if plan is None:
        raise InvalidInput(f"there is no active plan '{data.plan}'", field="plan")
    if session.exec(select(Server.id).where(Server.domain == domain)).first():
        raise AlreadyExists(f"a server for {domain} has already been ordered")
    server = Server(
        organisation_id=org_id,
        plan_id=plan.id,
        domain=domain,
        title=data.title,
        description=data.description,
        contact_email=data.contact_email,
        registrations_mode=data.registrations_mode,
        labels=data.labels,
    )
    session.add(server)
    try:
        # Flush now so a concurrent order of the same domain surfaces here as
        # a 409, not as a 500 at commit.
        session.flush()
    except IntegrityError as exc:
        session.rollback()
        raise AlreadyExists(f"a server for {domain} has already been ordered") from exc
    session.add(
        ServerEvent(
            server_id=server.id,
            event="order",
            from_state="",
            to_state=ServerState.requested,
            actor=principal.label,
        )
    )
    audit.record(
        session,
        principal,
        "server.order",
        "server",
        server.id,
        org_id,
        {"domain": domain, "plan": plan.code},
    )
    # With billing on, the order waits for Stripe to say it is paid.
    from controlplane.billing import subscriptions

    subscriptions.on_order(session, server, plan)
    return ServerView(server, plan.code)


def get(session: Session, principal: Principal, server_id: uuid.UUID) -> ServerView:
    server = _visible_server(session, principal, server_id)
    principal.require(server.organisation_id, Perm.servers_read, "server")
    return _view(session, server)


def list_servers(
    session: Session, principal: Principal, filters: ServerFilter, page: PageRequest
) -> tuple[list[ServerView], str | None]:
    statement = select(Server, Plan.code).join(Plan, col(Plan.id) == Server.plan_id)
    visible = principal.organisations_with(Perm.servers_read)
    if visible is not None:
        statement = statement.where(col(Server.organisation_id).in_(visible))
    if filters.organisation_id is not None:
        statement = statement.where(Server.organisation_id == filters.organisation_id)
    if filters.states:
        statement = statement.where(col(Server.state).in_(filters.states))
    else:
        statement = statement.where(Server.state != ServerState.deleted)
    if filters.plan:
        statement = statement.where(Plan.code == filters.plan)
    if filters.host_id is not None:
        principal.require_staff(StaffPerm.fleet_read)
        statement = statement.where(Server.host_id == filters.host_id)
    if filters.domain_contains:
        pattern = filters.domain_contains.lower().replace("\\", "").replace("%", "")
        statement = statement.where(
            col(Server.domain).contains(pattern.replace("_", "\\_"), escape="\\")
        )
    rows = session.exec(paginate(statement, Server.id, page)).all()
    items, cursor = finish_page(rows, page, lambda row: row[0].id)
    return [ServerView(server, code) for server, code in items], cursor


def list_organisation_servers(
    session: Session,
    principal: Principal,
    org_id: uuid.UUID,
    filters: ServerFilter,
    page: PageRequest,
) -> tuple[list[ServerView], str | None]:
    principal.require(org_id, Perm.servers_read)
    scoped = ServerFilter(
        organisation_id=org_id,
        states=filters.states,
        plan=filters.plan,
        host_id=filters.host_id,
        domain_contains=filters.domain_contains,
    )
    return list_servers(session, principal, scoped, page)


def update_settings(
    session: Session, principal: Principal, server_id: uuid.UUID, data: ServerUpdate
) -> ServerView:
    server = _visible_server(session, principal, server_id)
    principal.require(server.organisation_id, Perm.servers_update, "server")
    if server.state not in EDITABLE_STATES:
        raise InvalidTransition(
            f"a server that is {server.state} can no longer be changed", state=server.state
        )
    changes = data.model_dump(exclude_unset=True)
    for field, value in changes.items():
        if value is None and field in {"title", "description", "registrations_mode", "labels"}:
            raise InvalidInput(f"'{field}' cannot be null", field=field)
        setattr(server, field, value)
    server.updated_at = utcnow()
    session.add(server)
    audit.record(
        session,
        principal,
        "server.update",
        "server",
        server.id,
        server.organisation_id,
        {"fields": sorted(changes)},
    )
    return _view(session, server)


def cancel(
    session: Session, principal: Principal, server_id: uuid.UUID, reason: str | None
) -> ServerView:
    server = _visible_server(session, principal, server_id)
    principal.require(server.organisation_id, Perm.servers_cancel, "server")
    event = cancel_event(ServerState(server.state))
    actor = Actor.staff if principal.is_staff else Actor.customer
    apply_event(session, server, event, actor, principal.label, reason)
    audit.record(
        session,
        principal,
        f"server.{event}",
        "server",
        server.id,
        server.organisation_id,
        {"reason": reason} if reason else {},
    )
    return _view(session, server)


def start_provisioning(session: Session, server: Server) -> None:
    """Record the provisioning job for a server that has just entered
    `provisioning`; a worker picks it up once this transaction commits."""
    from controlplane.jobs import service as jobs
    from provisioning.registry import pipelines

    if jobs.active_job(session, server.id, "provision") is None:
        jobs.create_job(session, "provision", pipelines()["provision"].step_names, server.id)


# Events whose arrival starts work on the hosts.
_STARTS_PROVISIONING = frozenset({"approve", "retry"})
# Events whose playbook (suspend.yml, resume.yml) makes the host match: the
# maintenance page up and the services stopped, or the reverse. The same
# pipelines billing's suspensions run.
_RUNS_ITS_PLAYBOOK = frozenset({"suspend", "resume"})


def start_host_job(session: Session, server: Server, kind: str, reason: str | None) -> uuid.UUID:
    """Record the job that runs `kind`'s playbook on the server's host (one
    at a time: an unfinished one of the same kind is reused); a worker picks
    it up once this transaction commits."""
    from controlplane.jobs import service as jobs
    from provisioning.registry import pipelines

    existing = jobs.active_job(session, server.id, kind)
    if existing is not None:
        return existing.id
    params = {"reason": reason} if reason else {}
    return jobs.create_job(session, kind, pipelines()[kind].step_names, server.id, params).id


def staff_transition(
    session: Session, principal: Principal, server_id: uuid.UUID, event: str, reason: str | None
) -> ServerView:
    """Suspend or resume a server on staff's word (abuse, legal request);
    approve an order without payment, or retry a failed provisioning."""
    principal.require_staff(StaffPerm.servers_suspend)
    server = _visible_server(session, principal, server_id)
    apply_event(session, server, event, Actor.staff, principal.label, reason)
    details: dict[str, str] = {"reason": reason} if reason else {}
    if event in _STARTS_PROVISIONING:
        start_provisioning(session, server)
    elif event in _RUNS_ITS_PLAYBOOK:
        details["job_id"] = str(start_host_job(session, server, event, reason))
    audit.record(
        session, principal, f"server.{event}", "server", server.id, server.organisation_id, details
    )
    return _view(session, server)


def list_events(
    session: Session, principal: Principal, server_id: uuid.UUID, page: PageRequest
) -> tuple[list[ServerEvent], str | None]:
    server = _visible_server(session, principal, server_id)
    principal.require(server.organisation_id, Perm.servers_read, "server")
    statement = select(ServerEvent).where(ServerEvent.server_id == server.id)
    rows = session.exec(paginate(statement, ServerEvent.id, page)).all()
    return finish_page(rows, page, lambda event: event.id)
