"""Rollouts as staff see them: maintenance windows, choosing servers, the
dry run, starting, pausing, resuming and aborting. Carrying a rollout out is
engine.py's."""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.billing.models import Plan
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import InvalidInput, InvalidTransition, NotFound
from controlplane.rollouts import planning, releases
from controlplane.rollouts.models import (
    MaintenanceWindow,
    Rollout,
    RolloutState,
    RolloutTarget,
    TargetState,
)
from controlplane.rollouts.schemas import RolloutSpec, Selector, WindowsPut
from controlplane.rollouts.windows import WeeklyWindow
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Organisation

MANAGE = releases.MANAGE


# Maintenance windows ---------------------------------------------------------


def _organisation(session: Session, principal: Principal, org_id: uuid.UUID) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None or not principal.can_see(org.id):
        raise NotFound("organisation not found")
    return org


def list_windows(
    session: Session, principal: Principal, org_id: uuid.UUID
) -> tuple[Organisation, list[MaintenanceWindow]]:
    org = _organisation(session, principal, org_id)
    principal.require(org.id, Perm.servers_read)
    rows = session.exec(
        select(MaintenanceWindow)
        .where(MaintenanceWindow.organisation_id == org.id)
        .order_by(col(MaintenanceWindow.weekday), col(MaintenanceWindow.start_minute))
    ).all()
    return org, list(rows)


def replace_windows(
    session: Session, principal: Principal, org_id: uuid.UUID, data: WindowsPut
) -> tuple[Organisation, list[MaintenanceWindow]]:
    """Set the organisation's whole list of windows at once: one request,
    one consistent set, and sending it twice changes nothing more."""
    org = _organisation(session, principal, org_id)
    principal.require(org.id, Perm.servers_update)
    server_ids = {w.server_id for w in data.windows if w.server_id is not None}
    if server_ids:
        found = session.exec(
            select(Server.id).where(
                col(Server.id).in_(server_ids), Server.organisation_id == org.id
            )
        ).all()
        if set(found) != server_ids:
            raise InvalidInput("a window names a server this organisation does not have")
    for row in session.exec(
        select(MaintenanceWindow).where(MaintenanceWindow.organisation_id == org.id)
    ).all():
        session.delete(row)
    for window in data.windows:
        hours, minutes = window.start.split(":")
        session.add(
            MaintenanceWindow(
                organisation_id=org.id,
                server_id=window.server_id,
                weekday=window.weekday,
                start_minute=int(hours) * 60 + int(minutes),
                duration_minutes=window.duration_minutes,
            )
        )
    session.flush()
    audit.record(
        session,
        principal,
        "maintenance_windows.replace",
        "organisation",
        org.id,
        org.id,
        {"windows": len(data.windows)},
    )
    return list_windows(session, principal, org_id)


def windows_by_server(
    session: Session, servers: Iterable[Server]
) -> dict[uuid.UUID, tuple[WeeklyWindow, ...]]:
    """Each server's windows: its own when it has any, else its organisation's."""
    servers = list(servers)
    org_ids = {s.organisation_id for s in servers}
    by_org: dict[uuid.UUID, list[WeeklyWindow]] = defaultdict(list)
    by_server: dict[uuid.UUID, list[WeeklyWindow]] = defaultdict(list)
    if org_ids:
        for row in session.exec(
            select(MaintenanceWindow).where(col(MaintenanceWindow.organisation_id).in_(org_ids))
        ).all():
            window = WeeklyWindow(row.weekday, row.start_minute, row.duration_minutes)
            (by_server[row.server_id] if row.server_id else by_org[row.organisation_id]).append(
                window
            )
    return {
        s.id: tuple(sorted(by_server.get(s.id) or by_org.get(s.organisation_id) or ()))
        for s in servers
    }


# Choosing servers and planning --------------------------------------------------


def select_servers(session: Session, selector: Selector) -> list[Server]:
    """Active servers the selector names, oldest first (the first is the
    canary). Series is matched on the running version."""
    statement = select(Server).where(Server.state == ServerState.active)
    if selector.organisations:
        statement = statement.where(col(Server.organisation_id).in_(selector.organisations))
    if selector.servers:
        statement = statement.where(col(Server.id).in_(selector.servers))
    if selector.plans:
        statement = statement.join(Plan, col(Plan.id) == col(Server.plan_id)).where(
            col(Plan.code).in_(selector.plans)
        )
    rows = session.exec(statement.order_by(col(Server.id))).all()
    chosen = []
    for server in rows:
        if selector.labels and any(server.labels.get(k) != v for k, v in selector.labels.items()):
            continue
        if selector.series:
            running = planning.Release.from_reported(server.version)
            if running is None or releases.series_of(running) not in selector.series:
                continue
        chosen.append(server)
    return chosen


def candidates(session: Session, servers: list[Server]) -> list[planning.Candidate]:
    zones = dict(
        session.exec(
            select(Organisation.id, Organisation.timezone).where(
                col(Organisation.id).in_({s.organisation_id for s in servers})
            )
        ).all()
    )
    windows = windows_by_server(session, servers)
    return [
        planning.Candidate(
            s.id, s.organisation_id, s.domain, s.version, zones[s.organisation_id], windows[s.id]
        )
        for s in servers
    ]


def _plan(session: Session, spec: RolloutSpec, now: datetime) -> planning.RolloutPlan:
    target = releases.get(session, releases.parse_tag(spec.target).tag)
    servers = select_servers(session, spec.selector)
    timing = planning.Timing(
        concurrency=spec.concurrency,
        soak=timedelta(seconds=spec.soak_seconds),
        urgent=spec.urgent,
        notice=timedelta(seconds=spec.notice_seconds),
    )
    try:
        return planning.plan_rollout(
            candidates(session, servers), target.tag, spec.waves, spec.failure_budget, now, timing
        )
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


def preview(
    session: Session, principal: Principal, spec: RolloutSpec, now: datetime
) -> planning.RolloutPlan:
    """The dry run: what starting this rollout now would do."""
    principal.require_staff(StaffPerm.fleet_read)
    return _plan(session, spec, now)


def start(session: Session, principal: Principal, spec: RolloutSpec, now: datetime) -> Rollout:
    """Record a rollout and its servers, running: the engine takes it from
    the next tick (or at once, from the task sent after commit)."""
    principal.require_staff(MANAGE)
    plan = _plan(session, spec, now)
    if plan.to_upgrade == 0:
        raise InvalidInput("no selected server needs this release", target=plan.target)
    rollout = Rollout(
        target_version=plan.target,
        state=RolloutState.running,
        selector=spec.selector.model_dump(mode="json", exclude_defaults=True),
        waves=list(spec.waves),
        concurrency=spec.concurrency,
        soak_seconds=spec.soak_seconds,
        failure_budget=str(spec.failure_budget),
        failure_budget_count=plan.failure_budget,
        urgent=spec.urgent,
        notice_seconds=spec.notice_seconds,
        created_by=principal.label,
        started_at=now,
    )
    session.add(rollout)
    session.flush()
    for planned in plan.servers:
        skipped = planned.skip_reason is not None
        session.add(
            RolloutTarget(
                rollout_id=rollout.id,
                server_id=planned.server_id,
                organisation_id=planned.organisation_id,
                wave=planned.wave,
                position=planned.position,
                state=TargetState.skipped if skipped else TargetState.pending,
                from_version=planned.version,
                outcome=planned.skip_reason,
                finished_at=now if skipped else None,
            )
        )
    audit.record(
        session,
        principal,
        "rollout.start",
        "rollout",
        rollout.id,
        None,
        {"target": plan.target, "servers": plan.to_upgrade, "waves": len(plan.waves)},
    )
    return rollout


# Reading and steering -------------------------------------------------------------


def get(session: Session, principal: Principal, rollout_id: uuid.UUID) -> Rollout:
    principal.require_staff(StaffPerm.fleet_read)
    rollout = session.get(Rollout, rollout_id)
    if rollout is None:
        raise NotFound("rollout not found")
    return rollout


def list_rollouts(
    session: Session, principal: Principal, page: PageRequest, state: RolloutState | None = None
) -> tuple[list[Rollout], str | None]:
    principal.require_staff(StaffPerm.fleet_read)
    statement = select(Rollout)
    if state is not None:
        statement = statement.where(Rollout.state == state)
    rows = session.exec(paginate(statement, Rollout.id, page)).all()
    return finish_page(rows, page, lambda r: r.id)


def wave_counts(session: Session, rollout_id: uuid.UUID) -> dict[int, Counter[str]]:
    """Servers per wave and state, in one grouped query."""
    rows = session.exec(
        select(RolloutTarget.wave, RolloutTarget.state, func.count())
        .where(RolloutTarget.rollout_id == rollout_id)
        .group_by(col(RolloutTarget.wave), col(RolloutTarget.state))
    ).all()
    counts: dict[int, Counter[str]] = defaultdict(Counter)
    for wave, state, number in rows:
        counts[wave][TargetState(state).value] += number
    return counts


def list_targets(
    session: Session, principal: Principal, rollout_id: uuid.UUID, page: PageRequest
) -> tuple[list[tuple[RolloutTarget, str]], str | None]:
    get(session, principal, rollout_id)
    statement = (
        select(RolloutTarget, Server.domain)
        .join(Server, col(Server.id) == col(RolloutTarget.server_id))
        .where(RolloutTarget.rollout_id == rollout_id)
    )
    rows = session.exec(paginate(statement, RolloutTarget.id, page)).all()
    items, cursor = finish_page(rows, page, lambda row: row[0].id)
    return [(target, domain) for target, domain in items], cursor


_STEERING = {
    "pause": ({RolloutState.running}, RolloutState.paused),
    "resume": ({RolloutState.paused}, RolloutState.running),
    "abort": (
        {RolloutState.running, RolloutState.paused, RolloutState.halted},
        RolloutState.aborted,
    ),
}


def steer(
    session: Session,
    principal: Principal,
    rollout_id: uuid.UUID,
    action: str,
    now: datetime | None = None,
) -> Rollout:
    """Pause, resume or abort. Jobs already running finish (a playbook cut
    off halfway is worse than one let through); no new server starts."""
    principal.require_staff(MANAGE)
    rollout = get(session, principal, rollout_id)
    allowed, to = _STEERING[action]
    if rollout.state not in allowed:
        raise InvalidTransition(
            f"a {rollout.state.value} rollout cannot {action}",
            state=rollout.state.value,
            event=action,
        )
    rollout.state = to
    rollout.state_reason = (
        f"{action}d by {principal.label}"
        if action != "abort"
        else (f"aborted by {principal.label}")
    )
    if to == RolloutState.aborted:
        rollout.finished_at = now or utcnow()
    rollout.updated_at = now or utcnow()
    session.add(rollout)
    audit.record(session, principal, f"rollout.{action}", "rollout", rollout.id, None)
    return rollout
