"""Starting the upgrade of one server to a Mastodon release tag.

The work itself is the `upgrade` job (provisioning/steps/upgrade.py), which
rolls the server back when the new release fails its health gate. This is
the one way in: the API calls it for a staff member, and rollouts call it
for each server of a wave, so it knows nothing about HTTP.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import StaffPerm
from controlplane.jobs import service as jobs
from controlplane.jobs.models import FINISHED, Job
from controlplane.problems import Conflict, InvalidInput, InvalidTransition, NotFound
from controlplane.servers.lifecycle import Actor, ServerState
from controlplane.servers.models import Server
from controlplane.servers.service import apply_event

# The upgrade job's param listing the jobs that share its Ansible run.
SHARED_RUN_PARAM = "shared_run"
# vMAJOR.MINOR.PATCH with an optional SemVer pre-release (-rc.1, -beta.2).
# Build metadata (+glitch) is what a running server reports, never a tag.
_TAG = re.compile(
    r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


@dataclass(frozen=True)
class Release:
    """A Mastodon release, ordered as SemVer orders versions."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    @classmethod
    def from_tag(cls, tag: str) -> Release | None:
        """`v4.6.0`, `v4.6.0-rc.1`; None for anything else."""
        match = _TAG.fullmatch(tag)
        if match is None:
            return None
        major, minor, patch, pre = match.groups()
        return cls(int(major), int(minor), int(patch), tuple(pre.split(".")) if pre else ())

    @classmethod
    def from_reported(cls, version: str | None) -> Release | None:
        """What Mastodon reports at /api/v2/instance: `4.5.1`, `4.5.1+glitch`."""
        if not version:
            return None
        return cls.from_tag("v" + version.split("+", 1)[0].removeprefix("v"))

    @property
    def tag(self) -> str:
        pre = f"-{'.'.join(self.prerelease)}" if self.prerelease else ""
        return f"v{self.major}.{self.minor}.{self.patch}{pre}"

    def sort_key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A pre-release comes before its release; its identifiers compare
        # numerically when numeric, and numeric ones before alphanumeric ones.
        identifiers = tuple(
            (0, int(part), "") if part.isdigit() else (1, 0, part) for part in self.prerelease
        )
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, identifiers)

    def __lt__(self, other: Release) -> bool:
        return self.sort_key() < other.sort_key()


def start_upgrade(
    session: Session, initiator: Principal | str, server_id: uuid.UUID, version: str
) -> Job:
    """Record an upgrade job for an active server and move it to `upgrading`,
    or refuse and change nothing.

    `initiator` is the staff member asking, or, for work Herd started on
    someone's behalf earlier (a rollout wave), a label naming it: that
    caller was authorised when the rollout was. The job is sent to a worker
    once the caller's transaction commits.
    """
    if isinstance(initiator, Principal):
        initiator.require_staff(StaffPerm.servers_suspend)
        principal, label = initiator, initiator.label
    else:
        principal, label = None, initiator
    target = Release.from_tag(version)
    if target is None:
        raise InvalidInput(
            f"'{version}' is not a release tag: use vMAJOR.MINOR.PATCH such as v4.6.0, "
            "optionally with a pre-release suffix such as v4.6.0-rc.1",
            field="version",
        )
    server = session.get(Server, server_id)
    if server is None:
        raise NotFound("server not found")
    if server.state != ServerState.active:
        raise InvalidTransition(
            f"only an active server can be upgraded; this one is {server.state.value}",
            state=server.state.value,
            event="upgrade",
        )
    running = Release.from_reported(server.version)
    if running is None:
        raise Conflict(
            "the release this server runs is not known, so there would be nothing to roll "
            "back to; wait for its next health check"
        )
    if target == running:
        raise Conflict(f"the server already runs {server.version}")
    if target < running:
        raise Conflict(
            f"{target.tag} is older than {server.version}, which the server runs: upgrades "
            "only go forward (a failed upgrade is rolled back by its own job)"
        )
    busy = session.exec(
        select(Job).where(Job.server_id == server.id, col(Job.state).not_in(FINISHED))
    ).first()
    if busy is not None:
        # Two jobs must not run playbooks against one server at once.
        raise Conflict(
            f"a {busy.kind} job ({busy.id}) has not finished on this server; "
            "wait for it or cancel it"
        )

    from provisioning.registry import pipelines

    # Moving the server here, in the request's transaction, is what makes a
    # second request for it (a double click, two waves) a 409 instead of a
    # second job: apply_event is a compare-and-set on `active`. The job's own
    # first step accepts a server it finds `upgrading`.
    apply_event(session, server, "upgrade", Actor.system, label, f"upgrade to {target.tag}")
    job = jobs.create_job(
        session,
        "upgrade",
        pipelines()["upgrade"].step_names,
        server.id,
        {"version": target.tag, "from_version": running.tag},
    )
    audit.record(
        session,
        principal,
        "server.upgrade",
        "server",
        server.id,
        server.organisation_id,
        {"from": running.tag, "to": target.tag, "job_id": str(job.id)},
        actor_label=label,
    )
    return job


def run_together(session: Session, jobs: list[Job]) -> None:
    """Have upgrade jobs started together (a rollout's tick) run upgrade.yml
    as one Ansible run, the first job leading (provisioning/steps/
    shared_run.py): one controller for the lot instead of one per server.
    Jobs are sent to the workers when the transaction commits, so the
    workers see this."""
    if len(jobs) < 2:
        return
    ids = [str(job.id) for job in jobs]
    for job in jobs:
        job.params = {**job.params, SHARED_RUN_PARAM: ids}
        session.add(job)
