"""Carrying a rollout out: a reconcile loop.

`advance` looks at what the database says (the rollout, its servers, their
jobs) and does the next thing: tell organisations, read finished jobs,
count failures against the budget, start servers of the current wave within
the concurrency cap and their windows, soak, move to the next wave. It holds
no state of its own and may be called any number of times, by the periodic
task or after a restart: each server's row records its job id in the same
transaction that creates the job, so no server is upgraded twice.
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from controlplane.fleet.models import Host
from controlplane.jobs.models import FINISHED, Job, JobState
from controlplane.problems import Conflict
from controlplane.rollouts import notify, service
from controlplane.rollouts.models import Rollout, RolloutState, RolloutTarget, TargetState
from controlplane.rollouts.windows import WeeklyWindow, is_open
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.servers.upgrades import Release, run_together, start_upgrade
from controlplane.tenancy.models import Organisation

log = logging.getLogger(__name__)

# (server, its host, the tag it should run) → (healthy, what was seen)
Probe = Callable[[Server, Host | None, str], tuple[bool, str]]
LABEL = "rollout"
DONE = frozenset({TargetState.succeeded, TargetState.failed, TargetState.skipped})
# Servers started in one tick share one Ansible run, and their jobs end within
# seconds of each other, the run's leader first. Slots freed meanwhile wait up
# to this long for the rest, so the next tick starts them together: started
# one by one, each would pay for an Ansible run of its own.
GATHER_SECONDS = 20.0


def advance(
    session: Session, rollout_id: uuid.UUID, now: datetime, probe: Probe | None = None
) -> Rollout | None:
    """One reconcile step of one rollout; the caller commits."""
    rollout = session.exec(
        select(Rollout).where(Rollout.id == rollout_id).with_for_update()
    ).first()
    if rollout is None:
        return None
    targets = list(
        session.exec(
            select(RolloutTarget)
            .where(RolloutTarget.rollout_id == rollout.id)
            .order_by(col(RolloutTarget.wave), col(RolloutTarget.position))
        ).all()
    )
    # Outcomes are read whatever the state: a job that was running when the
    # rollout was paused, halted or aborted still ends, and counts.
    _read_outcomes(session, rollout, targets, now)
    if rollout.state != RolloutState.running:
        return rollout
    _notify_before(session, rollout, targets, now)
    if _budget_spent(rollout, targets, now):
        return rollout
    waves = sorted({t.wave for t in targets if t.wave >= 0})
    while rollout.state == RolloutState.running:
        wave = [t for t in targets if t.wave == rollout.current_wave]
        if rollout.current_wave > (waves[-1] if waves else -1):
            _finish(rollout, now)
            break
        if all(t.state in DONE for t in wave):
            if rollout.wave_done_at is None:
                _gate_wave(session, rollout, wave, now, probe)
                if _budget_spent(rollout, targets, now):
                    break
                rollout.wave_done_at = now
            if now < rollout.wave_done_at + timedelta(seconds=rollout.soak_seconds):
                break  # soaking: the next tick looks again
            rollout.current_wave += 1
            rollout.wave_done_at = None
            continue
        _start_due(session, rollout, targets, wave, now)
        break
    rollout.updated_at = now
    session.add(rollout)
    return rollout


def _read_outcomes(
    session: Session, rollout: Rollout, targets: list[RolloutTarget], now: datetime
) -> None:
    running = [t for t in targets if t.state == TargetState.running and t.job_id]
    if not running:
        return
    jobs = {
        j.id: j
        for j in session.exec(select(Job).where(col(Job.id).in_([t.job_id for t in running]))).all()
    }
    for target in running:
        job = jobs.get(target.job_id)  # type: ignore[arg-type]
        if job is None or job.state not in FINISHED:
            continue
        server = session.get(Server, target.server_id)
        if job.state == JobState.succeeded:
            # The job's own health gate recorded what the server runs.
            running_version = Release.from_reported(server.version if server else None)
            if running_version is not None and running_version.tag == rollout.target_version:
                _settle(target, TargetState.succeeded, f"upgraded to {rollout.target_version}", now)
            else:
                _settle(
                    target,
                    TargetState.failed,
                    f"the job succeeded but the server runs {server.version if server else '?'}",
                    now,
                )
        else:
            # A rolled-back server ends its job failed: it counts.
            _settle(target, TargetState.failed, (job.error or job.state.value)[:500], now)
        _notify_after(session, rollout, target, server)
        session.add(target)


def _settle(target: RolloutTarget, state: TargetState, outcome: str, now: datetime) -> None:
    target.state, target.outcome, target.finished_at = state, outcome[:500], now


def _failures(targets: list[RolloutTarget]) -> list[RolloutTarget]:
    return [t for t in targets if t.state == TargetState.failed]


def _budget_spent(rollout: Rollout, targets: list[RolloutTarget], now: datetime) -> bool:
    failed = _failures(targets)
    if len(failed) <= rollout.failure_budget_count:
        return False
    rollout.state = RolloutState.halted
    rollout.state_reason = (
        f"failure budget spent: {len(failed)} server(s) failed, "
        f"{rollout.failure_budget_count} tolerated (wave {rollout.current_wave}); "
        f"last: {failed[-1].outcome}"
    )[:500]
    rollout.updated_at = now
    session_log = ", ".join(str(t.server_id) for t in failed)
    log.warning("rollout %s halted: %s [%s]", rollout.id, rollout.state_reason, session_log)
    return True


def _gate_wave(
    session: Session,
    rollout: Rollout,
    wave: list[RolloutTarget],
    now: datetime,
    probe: Probe | None,
) -> None:
    """After a wave, check every upgraded server again: each job gated its
    own server, but a server can fall over once its neighbours restart."""
    if probe is None:
        return
    for target in wave:
        if target.state != TargetState.succeeded:
            continue
        server = session.get(Server, target.server_id)
        if server is None:
            continue
        host = session.get(Host, server.host_id) if server.host_id else None
        healthy, seen = probe(server, host, rollout.target_version)
        if not healthy:
            _settle(target, TargetState.failed, f"post-wave health gate: {seen}", now)
            session.add(target)


def _start_due(
    session: Session,
    rollout: Rollout,
    targets: list[RolloutTarget],
    wave: list[RolloutTarget],
    now: datetime,
) -> None:
    free = rollout.concurrency - sum(1 for t in targets if t.state == TargetState.running)
    pending = [t for t in wave if t.state == TargetState.pending]
    if free <= 0 or not pending:
        return
    if free < min(rollout.concurrency, len(pending)) and _mates_finishing(targets, now):
        return
    servers = {
        s.id: s
        for s in session.exec(
            select(Server).where(col(Server.id).in_([t.server_id for t in pending]))
        ).all()
    }
    windows = service.windows_by_server(session, servers.values())
    zones = dict(
        session.exec(
            select(Organisation.id, Organisation.timezone).where(
                col(Organisation.id).in_({t.organisation_id for t in pending})
            )
        ).all()
    )
    started: list[Job] = []
    for target in pending:
        if free <= 0:
            break
        server = servers.get(target.server_id)
        if server is None:
            _settle(target, TargetState.skipped, "the server no longer exists", now)
            session.add(target)
            continue
        running = Release.from_reported(server.version)
        target_release = Release.from_tag(rollout.target_version)
        if running is not None and target_release is not None and not running < target_release:
            _settle(target, TargetState.skipped, f"already on {server.version}", now)
            session.add(target)
            continue
        if server.state != ServerState.active:
            if server.state in (ServerState.upgrading,):
                continue  # someone else's job: wait for it
            _settle(target, TargetState.skipped, f"the server is {server.state.value}", now)
            session.add(target)
            continue
        if not _may_touch(rollout, target, zones.get(target.organisation_id, "UTC"), windows, now):
            continue
        try:
            job = start_upgrade(session, f"{LABEL} {rollout.id}", server.id, rollout.target_version)
        except Conflict as exc:
            # Another job on the server: try again on the next tick.
            target.outcome = f"waiting: {exc.detail}"[:500]
            session.add(target)
            continue
        target.state, target.job_id, target.started_at = TargetState.running, job.id, now
        target.from_version = server.version
        target.outcome = None
        session.add(target)
        started.append(job)
        free -= 1
    run_together(session, started)


def _mates_finishing(targets: list[RolloutTarget], now: datetime) -> bool:
    """Whether servers started together are still ending: one of them has
    finished less than GATHER_SECONDS ago and another is still running."""
    first_finish: dict[datetime, datetime] = {}
    for target in targets:
        if target.state in DONE and target.started_at and target.finished_at:
            seen = first_finish.get(target.started_at)
            if seen is None or target.finished_at < seen:
                first_finish[target.started_at] = target.finished_at
    return any(
        t.state == TargetState.running
        and t.started_at in first_finish
        and now < first_finish[t.started_at] + timedelta(seconds=GATHER_SECONDS)
        for t in targets
    )


def _may_touch(
    rollout: Rollout,
    target: RolloutTarget,
    timezone: str,
    windows: dict[uuid.UUID, tuple[WeeklyWindow, ...]],
    now: datetime,
) -> bool:
    if is_open(now, timezone, windows.get(target.server_id, ())):
        return True
    # An urgent rollout may go outside the window once the organisation has
    # had its notice.
    return (
        rollout.urgent
        and target.notified_before_at is not None
        and now >= target.notified_before_at + timedelta(seconds=rollout.notice_seconds)
    )


def _finish(rollout: Rollout, now: datetime) -> None:
    rollout.state = RolloutState.completed
    rollout.state_reason = None
    rollout.finished_at = now


def _notify_before(
    session: Session, rollout: Rollout, targets: list[RolloutTarget], now: datetime
) -> None:
    """Once per organisation and rollout, before any of its servers starts."""
    waiting: dict[uuid.UUID, list[RolloutTarget]] = defaultdict(list)
    for target in targets:
        if target.state == TargetState.pending and target.notified_before_at is None:
            waiting[target.organisation_id].append(target)
    if not waiting:
        return
    domains = dict(
        session.exec(
            select(Server.id, Server.domain).where(
                col(Server.id).in_([t.server_id for ts in waiting.values() for t in ts])
            )
        ).all()
    )
    for org_id, org_targets in waiting.items():
        names = sorted(domains.get(t.server_id, str(t.server_id)) for t in org_targets)
        lines = [
            f"Your hosting provider is upgrading Mastodon to {rollout.target_version} on:",
            *(f"  - {name}" for name in names),
            "",
        ]
        if rollout.urgent:
            lines.append(
                "This is an urgent security release: the upgrade may take place outside "
                f"your maintenance window, from {rollout.notice_seconds // 60} minute(s) "
                "after this notice."
            )
        else:
            lines.append("The upgrade takes place within your maintenance windows.")
        lines.append("Each server is briefly unavailable while it restarts.")
        notify.tell(
            session,
            org_id,
            rollout.id,
            "rollout.notice",
            f"Scheduled maintenance: Mastodon {rollout.target_version}",
            lines,
            {"target": rollout.target_version, "servers": names, "urgent": rollout.urgent},
        )
        for target in org_targets:
            target.notified_before_at = now
            session.add(target)


def _notify_after(
    session: Session, rollout: Rollout, target: RolloutTarget, server: Server | None
) -> None:
    if target.notified_after_at is not None:
        return
    name = server.domain if server else str(target.server_id)
    if target.state == TargetState.succeeded:
        subject = f"Maintenance done: {name} runs Mastodon {rollout.target_version}"
        lines = [f"{name} now runs Mastodon {rollout.target_version}."]
        action = "rollout.server_upgraded"
    else:
        subject = f"Maintenance rolled back: {name} stays on {target.from_version}"
        lines = [
            f"The upgrade of {name} to Mastodon {rollout.target_version} did not pass its "
            f"checks; the server is back on {server.version if server else target.from_version}.",
            f"Details: {target.outcome}",
        ]
        action = "rollout.server_failed"
    notify.tell(
        session,
        target.organisation_id,
        rollout.id,
        action,
        subject,
        lines,
        {"server": name, "target": rollout.target_version, "outcome": target.outcome},
        key=str(target.server_id),
    )
    target.notified_after_at = target.finished_at


def advance_all(engine: Engine, now: datetime, probe: Probe | None = None) -> int:
    """Advance every rollout that may still change, each in its own
    transaction so one broken rollout does not hold the others back."""
    with Session(engine) as session:
        steerable = session.exec(
            select(Rollout.id).where(
                col(Rollout.state).in_([RolloutState.running, RolloutState.paused])
            )
        ).all()
        # Halted and aborted rollouts only until their last jobs are read.
        finishing = session.exec(
            select(RolloutTarget.rollout_id)
            .where(RolloutTarget.state == TargetState.running)
            .distinct()
        ).all()
    ids = sorted(set(steerable) | set(finishing))
    advanced = 0
    for rollout_id in ids:
        with Session(engine, expire_on_commit=False) as session:
            try:
                advance(session, rollout_id, now, probe)
                session.commit()
                advanced += 1
            except Exception:
                session.rollback()
                log.exception("advancing rollout %s failed; the next tick tries again", rollout_id)
    return advanced
