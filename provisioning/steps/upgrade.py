"""Upgrading a server to a Mastodon release tag, and rolling it back to the
release it ran when the upgrade fails.

    mark_upgrading → run_upgrade → health_gate → activate
                   ↘ (either fails) → run_rollback → rollback_health_gate → finish_rollback

Job params: ``version`` (the tag to go to) and ``from_version`` (the tag the
server ran when the job was created, where a rollback returns to); jobs a
rollout starts together also carry ``shared_run``, and run upgrade.yml as one
ansible-runner run (provisioning/steps/shared_run.py). The rollback and the
health gates stay each job's own.

Why the rollback is compensating steps of this same job, and not the
pipeline's ``on_failure`` hook nor a second job started from it: the runner
checkpoints steps, not callbacks. ``on_failure`` runs once, in memory, after
the failing step is marked failed and before the job is released; a worker
killed during a rollback there leaves a job the reconciler resumes by running
the failed step again, i.e. the upgrade, not the rollback. Starting a
"rollback" job from the hook has the same gap between its commit and the
upgrade job's release, in which both jobs can run against one host. As steps
of the upgrade job, each part of the rollback is leased and checkpointed like
any other: a worker killed in ``run_rollback`` is replaced by one that runs
``run_rollback`` again (rollback.yml does nothing twice: it stops early once
rolled back, and restores a given backup at a given release once), and never
re-runs the upgrade, whose step is already done.

So the forward steps do not fail the job when the host fails them: on their
last attempt ``run_upgrade`` and ``health_gate`` finish with the failure as
their result (``upgrade_failed``), ``activate`` stands aside, and the
compensating steps, which stand aside when nothing failed, take over. The job
then ends failed with a message that says it was rolled back and why; a
rollback that fails itself leaves the server ``failed`` with both reasons.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from sqlmodel import Session, col, select

from controlplane.jobs.models import JobEvent, JobStep
from controlplane.servers.lifecycle import Actor, ServerState
from controlplane.servers.models import Server
from controlplane.servers.service import apply_event
from provisioning.pipeline import (
    Pipeline,
    Step,
    StepContext,
    StepFailed,
    StepRetry,
    StepWait,
)
from provisioning.steps import shared_run
from provisioning.steps.provision import health_gate, playbook_step
from provisioning.steps.runs import server_of

KIND = "upgrade"
ACTOR = "herd"
# A phased restart keeps the old release answering until the new one has
# booted: the gate waits about 80 s (3, 6, 12, then 15 s apart) before it
# calls the new release unhealthy.
HEALTH_ATTEMPTS = 8
HEALTH_BACKOFF_SECONDS = 3.0
HEALTH_MAX_BACKOFF_SECONDS = 15.0

_UPGRADE_PLAYBOOK = playbook_step("upgrade.yml")
_ROLLBACK_PLAYBOOK = playbook_step("rollback.yml")
# The forward steps whose result may carry the failure that starts a rollback.
_FORWARD_STEPS = ("run_upgrade", "health_gate")


@dataclasses.dataclass(frozen=True)
class UpgradeFailure:
    reason: str
    # False when upgrade.yml stopped before it noted the upgrade in the host's
    # release record (state.json), i.e. before it checked anything out: then
    # there is nothing to roll back, and rollback.yml must not run, since it
    # would take the record's older "previous" release and backup instead.
    host_changed: bool


def _target(context: StepContext) -> str:
    return str(context.params["version"])


def _previous(context: StepContext) -> str:
    previous = context.params.get("from_version")
    if not previous:
        raise StepFailed("the job does not say which release to return to (from_version)")
    return str(previous)


def upgrade_failure(session: Session, context: StepContext) -> UpgradeFailure | None:
    """What made the forward steps give up, read from their checkpoints, so
    any worker that resumes the job reaches the same decision."""
    rows = session.exec(
        select(JobStep).where(
            JobStep.job_id == context.job_id, col(JobStep.name).in_(_FORWARD_STEPS)
        )
    ).all()
    for row in sorted(rows, key=lambda r: r.position):
        if "upgrade_failed" in row.result:
            return UpgradeFailure(
                str(row.result["upgrade_failed"]), bool(row.result.get("host_changed", True))
            )
    return None


def release_record_written(session: Session, context: StepContext) -> bool:
    """Whether upgrade.yml changed the host's state.json in any attempt of
    this job: its first write ("upgrade started": upgrading_to and this
    attempt's backup) comes after the backup and before the checkout."""
    events = session.exec(
        select(JobEvent).where(
            JobEvent.job_id == context.job_id,
            JobEvent.step == "run_upgrade",
            JobEvent.status == "changed",
        )
    ).all()
    return any(str(e.result.get("dest", "")).endswith("/state.json") for e in events)


def _last_attempt(context: StepContext, attempts: int) -> bool:
    return context.attempt >= attempts


# -- forward ----------------------------------------------------------------------


def mark_upgrading(context: StepContext) -> dict[str, Any]:
    """start_upgrade normally moved the server already (so a second request is
    refused at once); a job created another way is moved here. Anything else
    means the server changed meanwhile: stop before touching the host."""
    with context.session() as session:
        server = server_of(session, context)
        if server.state == ServerState.active:
            reason = f"upgrade to {_target(context)}"
            apply_event(session, server, "upgrade", Actor.system, ACTOR, reason)
            session.commit()
        elif server.state != ServerState.upgrading:
            raise StepFailed(f"the server is {server.state.value}, not active; nothing was changed")
        return {"state": server.state.value}


def _shared_extravars(servers: int) -> dict[str, Any]:
    # All of the run's servers at once, and one failure does not stop the
    # others part-way: each server's outcome is its own job's. The play keeps
    # its linear strategy: free showed no gain in the 50-host benchmark (a
    # ratio to plain Ansible of 1.23, against 1.19 with linear; README,
    # Performance), and the machine is CPU-bound either way.
    return {"mastodon_upgrade_serial": servers, "mastodon_upgrade_max_fail_percentage": 100}


def run_upgrade(context: StepContext) -> dict[str, Any]:
    try:
        shared = shared_run.run(context, "upgrade.yml", _shared_extravars)
        return shared if shared is not None else _UPGRADE_PLAYBOOK.run(context)
    except StepWait:
        raise
    except Exception as error:
        # On the last attempt any failure means roll back. playbook_step raises
        # StepFailed once a failed task has been retried; anything else is
        # retried until this step's attempts run out.
        if not isinstance(error, StepFailed) and not _last_attempt(
            context, _UPGRADE_PLAYBOOK.attempts
        ):
            raise
        reason = (
            str(error)
            if isinstance(error, StepFailed | StepRetry)
            else f"{type(error).__name__}: {error}"
        )
        with context.session() as session:
            changed = release_record_written(session, context)
        return {"upgrade_failed": reason, "host_changed": changed}


def gate_new_release(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        if upgrade_failure(session, context) is not None:
            return {"skipped": "the upgrade failed"}
    try:
        # Records the version the server reports once it is the target.
        return health_gate(context)
    except StepRetry as unhealthy:
        if not _last_attempt(context, HEALTH_ATTEMPTS):
            raise
        return {"upgrade_failed": str(unhealthy), "host_changed": True}


def activate(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        if upgrade_failure(session, context) is not None:
            return {"skipped": "the upgrade failed; rolling back"}
        server = server_of(session, context)
        if server.state == ServerState.upgrading:
            apply_event(session, server, "upgraded", Actor.system, ACTOR)
            session.commit()
        return {"state": server.state.value, "version": server.version}


# -- compensating -----------------------------------------------------------------


def run_rollback(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        failure = upgrade_failure(session, context)
    if failure is None:
        return {"skipped": "the upgrade succeeded"}
    if not failure.host_changed:
        return {"skipped": "the upgrade stopped before it changed the release on the host"}
    # rollback.yml reads where to go (the previous tag, this upgrade's
    # backup) from the host's release record; a failure here fails the job,
    # and mark_failed leaves the server failed.
    return _ROLLBACK_PLAYBOOK.run(context)


def gate_previous_release(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        if upgrade_failure(session, context) is None:
            return {"skipped": "the upgrade succeeded"}
    previous = dataclasses.replace(
        context, params={**context.params, "version": _previous(context)}
    )
    return health_gate(previous)


def finish_rollback(context: StepContext) -> dict[str, Any]:
    """Back to active on the previous release, then end the job failed: the
    upgrade did not happen, and the job says why."""
    with context.session() as session:
        failure = upgrade_failure(session, context)
        if failure is None:
            return {"skipped": "the upgrade succeeded"}
        previous, target = _previous(context), _target(context)
        if failure.host_changed:
            outcome = (
                f"rolled back to {previous}: the upgrade to {target} failed ({failure.reason})"
            )
        else:
            outcome = (
                f"nothing to roll back, still on {previous}: the upgrade to {target} failed "
                f"before it changed the release ({failure.reason})"
            )
        server = server_of(session, context)
        if server.state == ServerState.upgrading:
            apply_event(session, server, "rolled_back", Actor.system, ACTOR, outcome[:500])
            session.commit()
    raise StepFailed(outcome)


# -- when the job ends early --------------------------------------------------------


def mark_failed(context: StepContext, reason: str) -> None:
    """A step failed for good while the server is upgrading (the rollback
    itself, or a step that could not even start): the host is in a state
    nobody vouches for, so the server goes to `failed` with the reason. A
    server already back to active (finish_rollback) is left as it is."""
    with context.session() as session:
        server = session.get(Server, context.server_id) if context.server_id else None
        if server is None or server.state != ServerState.upgrading:
            return
        failure = upgrade_failure(session, context)
        if failure is not None:
            what = (
                "rollback failed"
                if failure.host_changed
                else f"not healthy on {context.params.get('from_version')}"
            )
            reason = f"{what} ({reason}) after the upgrade failed ({failure.reason})"
        apply_event(session, server, "fail", Actor.system, ACTOR, reason[:500])
        session.commit()


def mark_cancelled(context: StepContext) -> None:
    """Staff cancelled the job: a server whose release record was never
    touched goes back to active; otherwise it may be half-upgraded, and
    `failed` makes someone look."""
    with context.session() as session:
        server = session.get(Server, context.server_id) if context.server_id else None
        if server is None or server.state != ServerState.upgrading:
            return
        target = context.params.get("version")
        if release_record_written(session, context):
            reason = f"the upgrade to {target} was cancelled after it changed the host"
            apply_event(session, server, "fail", Actor.system, ACTOR, reason)
        else:
            reason = f"the upgrade to {target} was cancelled before it changed the host"
            apply_event(session, server, "upgrade_cancelled", Actor.system, ACTOR, reason)
        session.commit()


UPGRADE = Pipeline(
    KIND,
    (
        Step("mark_upgrading", mark_upgrading),
        Step(
            "run_upgrade",
            run_upgrade,
            attempts=_UPGRADE_PLAYBOOK.attempts,
            backoff_seconds=_UPGRADE_PLAYBOOK.backoff_seconds,
        ),
        Step(
            "health_gate",
            gate_new_release,
            attempts=HEALTH_ATTEMPTS,
            backoff_seconds=HEALTH_BACKOFF_SECONDS,
            max_backoff_seconds=HEALTH_MAX_BACKOFF_SECONDS,
        ),
        Step("activate", activate),
        Step(
            "run_rollback",
            run_rollback,
            attempts=_ROLLBACK_PLAYBOOK.attempts,
            backoff_seconds=_ROLLBACK_PLAYBOOK.backoff_seconds,
        ),
        Step(
            "rollback_health_gate",
            gate_previous_release,
            attempts=HEALTH_ATTEMPTS,
            backoff_seconds=HEALTH_BACKOFF_SECONDS,
            max_backoff_seconds=HEALTH_MAX_BACKOFF_SECONDS,
        ),
        # Ends the job with StepFailed on purpose (never retried); its other
        # errors are transient and retried like any step's.
        Step("finish_rollback", finish_rollback),
    ),
    on_failure=mark_failed,
    on_cancel=mark_cancelled,
)
