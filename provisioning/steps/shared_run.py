"""One ansible-runner run of a playbook for the servers of several jobs.

Why: every `ansible-playbook` process parses the playbook and its roles and
drives each task from its own controller. Run once per server, ten servers
upgrading side by side pay that ten times over on the same cores; run once
for the ten, they pay it once, as a plain `ansible-playbook -f 10` does.

Each server keeps its own job, so everything else stays per server: its
steps, checkpoints, events, health gate, rollback and failure budget. Jobs
started together carry the same ``shared_run`` param, the leader's job id
first. Only the leader runs the playbook: one inventory entry per server
(``<host>-slot<n>``, since two servers may share a host) with the server's
variables as host variables, every task event recorded on the job whose
server it ran on, and each job's outcome, taken from the run's per-host
stats, written into that job's own step record in one transaction. Each job,
the leader's too, then reads its outcome there as if it had run the playbook
alone: success finishes the step; a failure is that job's failed attempt,
and its next attempt runs alone.

Restarts: the leader's job is leased like any other, so a killed leader is
resumed by another worker, finds no outcome of its own and runs the shared
run again (the playbooks change nothing twice); the others wait for it
without holding a worker (StepWait). A job the shared run did not include
(cancelled meanwhile) or whose leader ended without one runs alone.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, col, select

from controlplane.fleet.models import Host
from controlplane.jobs.dispatch import send_now
from controlplane.jobs.models import FINISHED, Job, JobState, JobStep, StepState
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.servers.upgrades import SHARED_RUN_PARAM
from controlplane.settings import get_settings
from provisioning.ansible import HostSummary, Inventory, PlaybookResult, TaskEvent, run_playbook
from provisioning.hosts import inventory_for
from provisioning.pipeline import StepContext, StepWait
from provisioning.redaction import Redactor
from provisioning.steps.provision import playbook_failure, server_variables

# Where a job's outcome of the shared run sits in its step record's result
# until the step finishes and its own result replaces it.
OUTCOME = "shared_run_outcome"
# The leader wakes its followers as soon as it has written their outcomes;
# a follower's own look is the fallback for a lost wake or a follower that
# was mid-look then. Looks cost CPU the upgrades share, so not too often.
WAIT_SECONDS = 10.0


@dataclasses.dataclass(frozen=True)
class Member:
    job_id: uuid.UUID
    alias: str
    host: Host
    variables: dict[str, Any]


def job_ids(context: StepContext) -> list[uuid.UUID] | None:
    """The jobs that share this one's run, the leader first; None when the
    job runs alone."""
    ids = context.params.get(SHARED_RUN_PARAM)
    if not isinstance(ids, list) or len(ids) < 2:
        return None
    return [uuid.UUID(str(i)) for i in ids]


# The number of servers in the run → the run's extra variables (the same for
# every host: play keywords such as `serial` see only these).
ExtraVars = Callable[[int], dict[str, Any]]


def run(context: StepContext, playbook: str, extravars: ExtraVars) -> dict[str, Any] | None:
    """This job's result of the shared run of `playbook`, or None when the
    job should run the playbook alone. Raises the job's failure (StepRetry
    or StepFailed, as a run of its own would) or StepWait while the leader
    is still running it."""
    ids = job_ids(context)
    if ids is None:
        return None
    outcome = _own_outcome(context)
    if outcome is None:
        if context.job_id == ids[0]:
            _lead(context, ids, playbook, extravars)
            outcome = _own_outcome(context)
        elif _leader_running(context, ids[0]):
            raise StepWait(f"waiting for the shared {playbook} run of job {ids[0]}", WAIT_SECONDS)
    if outcome is None or outcome.get("consumed"):
        return None
    if outcome["ok"]:
        return outcome["result"]
    with context.session() as session:
        _store_outcome(session, context.job_id, context.step, {**outcome, "consumed": True})
        session.commit()
    raise playbook_failure(str(outcome["message"]), bool(outcome["unreachable"]), context.attempt)


def _own_outcome(context: StepContext) -> dict[str, Any] | None:
    with context.session() as session:
        record = _step(session, context.job_id, context.step)
    if record is None or record.state == StepState.done:
        return None
    outcome = record.result.get(OUTCOME)
    return outcome if isinstance(outcome, dict) else None


def _step(session: Session, job_id: uuid.UUID, name: str) -> JobStep | None:
    return session.exec(
        select(JobStep).where(JobStep.job_id == job_id, JobStep.name == name)
    ).first()


def _leader_running(context: StepContext, leader_id: uuid.UUID) -> bool:
    """Whether the leader may still run the shared run (so this job must
    wait): its job has not ended and its step has neither finished nor
    recorded its own outcome, which the leader writes with everyone's."""
    with context.session() as session:
        leader = session.get(Job, leader_id)
        record = _step(session, leader_id, context.step)
    if leader is None or leader.state in FINISHED or record is None:
        return False
    return record.state != StepState.done and OUTCOME not in record.result


def _members(context: StepContext, ids: list[uuid.UUID]) -> list[Member]:
    """The jobs still waiting for this run: not ended, not being cancelled,
    their step not done nor given an outcome, their server upgrading on a
    host. The leader is always among them."""
    members = []
    with context.session() as session:
        jobs = {j.id: j for j in session.exec(select(Job).where(col(Job.id).in_(ids))).all()}
        for job_id in ids:
            job = jobs.get(job_id)
            if job is None or job.server_id is None:
                continue
            if job_id != context.job_id and (job.state in FINISHED or job.cancel_requested):
                continue
            record = _step(session, job_id, context.step)
            if record is None or record.state == StepState.done:
                continue
            if job_id != context.job_id and OUTCOME in record.result:
                continue
            server = session.get(Server, job.server_id)
            if server is None or server.host_id is None or server.slot is None:
                continue
            if job_id != context.job_id and server.state != ServerState.upgrading:
                continue
            host, variables = server_variables(session, server, job.params.get("version"))
            members.append(Member(job_id, f"{host.name}-slot{server.slot}", host, variables))
    return members


def _inventory(members: list[Member]) -> Inventory:
    entries: dict[str, dict[str, Any]] = {}
    keys: dict[str, str] = {}
    for member in members:
        # Each server's variables are host variables of its own entry;
        # extra variables would be the same for every host.
        single = inventory_for([member.host], {member.host.name: member.variables})
        entries[member.alias] = single.hosts[member.host.name]
        if member.host.name in single.ssh_keys:
            keys[member.alias] = single.ssh_keys[member.host.name]
    return Inventory(hosts=entries, ssh_keys=keys)


def _redactor(context: StepContext, members: list[Member]) -> Redactor:
    # Each event is redacted before anyone sees it; as an event's host is
    # only known from the event itself, the net holds every member's secrets.
    from provisioning.registry import redactor_for

    secrets: list[str] = []
    with context.session() as session:
        for member in members:
            job = session.get(Job, member.job_id)
            if job is not None:
                secrets.extend(redactor_for(session, job).secrets)
    return Redactor(secrets)


def _lead(context: StepContext, ids: list[uuid.UUID], playbook: str, extravars: ExtraVars) -> None:
    members = _members(context, ids)
    by_alias = {m.alias: m for m in members}
    redactor = _redactor(context, members)

    def record(event: TaskEvent) -> None:
        member = by_alias.get(event.host or "")
        if member is not None:
            # Under its host's name, as in a run of its own.
            fields = dataclasses.asdict(event) | {"host": member.host.name}
            context.record_event(job_id=member.job_id, **fields)

    def cancelled() -> bool:
        # One job's cancel must not stop the others' upgrades halfway.
        with context.session() as session:
            wanted = session.exec(
                select(Job.cancel_requested).where(col(Job.id).in_([m.job_id for m in members]))
            ).all()
        return bool(wanted) and all(wanted)

    settings = get_settings()
    try:
        result = run_playbook(
            playbook,
            _inventory(members),
            extravars(len(members)),
            settings.data_dir / "runs",
            str(context.job_id),
            record,
            redactor,
            timeout_seconds=settings.playbook_timeout_seconds,
            should_cancel=cancelled,
            forks=len(members),
            skip_tags=settings.playbook_skip_tags,
        )
    except Exception as error:  # noqa: BLE001 - each member fails this attempt, as alone
        message = redactor.text(f"{playbook} could not run: {type(error).__name__}: {error}")
        _store_outcomes(context, {m.job_id: _failure(message, False) for m in members})
        _wake(context, [m.job_id for m in members if m.job_id != context.job_id])
        return
    _store_outcomes(context, {m.job_id: _outcome(playbook, result, m, members) for m in members})
    _wake(context, [m.job_id for m in members if m.job_id != context.job_id])


def _wake(context: StepContext, job_ids: list[uuid.UUID]) -> None:
    """The others read their outcomes now rather than at their next look:
    servers that finish together are started together by the next tick."""
    with context.session() as session:
        session.execute(
            update(Job)
            .where(col(Job.id).in_(job_ids), col(Job.state) == JobState.pending)
            .values(not_before=None)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    for job_id in job_ids:
        send_now(job_id)


def _outcome(
    playbook: str, result: PlaybookResult, member: Member, members: list[Member]
) -> dict[str, Any]:
    stats = result.hosts.get(member.alias)
    # "failed" is the run's status when any host failed; this host's own
    # stats say how it went. Timed out or cancelled runs have no stats.
    finished = result.status in ("successful", "failed")
    if finished and stats is not None and not stats.failed and not stats.unreachable:
        return {
            "ok": True,
            "result": {
                "playbook": playbook,
                "hosts": {member.host.name: vars(stats)},
                "seconds": round(result.seconds, 1),
                "shared_by": len(members),
            },
        }
    stats = stats or HostSummary()
    message = f"{playbook} {result.status} (rc {result.rc}) on {member.host.name}"
    return _failure(message, bool(stats.unreachable))


def _failure(message: str, unreachable: bool) -> dict[str, Any]:
    return {"ok": False, "message": message, "unreachable": unreachable}


def _store_outcomes(context: StepContext, outcomes: dict[uuid.UUID, dict[str, Any]]) -> None:
    # One transaction: a leader killed before it commits leaves no outcome
    # for anyone, and its resumed job runs the whole shared run again.
    with context.session() as session:
        for job_id, outcome in outcomes.items():
            _store_outcome(session, job_id, context.step, outcome)
        session.commit()


def _store_outcome(session: Session, job_id: uuid.UUID, step: str, outcome: dict[str, Any]) -> None:
    session.execute(
        update(JobStep)
        .where(
            col(JobStep.job_id) == job_id,
            col(JobStep.name) == step,
            col(JobStep.state) != StepState.done,
        )
        .values(result={OUTCOME: outcome})
        .execution_options(synchronize_session=False)
    )
