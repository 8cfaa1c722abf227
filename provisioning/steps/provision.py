"""Provisioning: from a server that is `provisioning` to one that is
`active` on a host, healthy, on the version it should run."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from controlplane.fleet import placement
from controlplane.fleet.models import Host
from controlplane.servers import secrets as server_secrets
from controlplane.servers.lifecycle import Actor, ServerState
from controlplane.servers.models import Server
from controlplane.servers.service import apply_event
from controlplane.settings import get_settings
from provisioning import health
from provisioning.pipeline import Pipeline, Step, StepContext, StepFailed, StepRetry
from provisioning.steps.identity import PREPARE_IDENTITY
from provisioning.steps.runs import host_of, run_on_host, server_of
from provisioning.steps.storage import prepare_storage
from provisioning.variables import deployment_variables


def reserve_host(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = server_of(session, context)
        try:
            host = placement.place(session, server)
        except placement.NoCapacity as exc:
            # Capacity may come (staff add a host): keep retrying, visibly.
            raise StepRetry(str(exc)) from exc
        session.commit()
        return {"host": host.name, "slot": server.slot}


def generate_secrets(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        values = server_secrets.ensure(session, server_of(session, context).id)
        session.commit()
    return {"generated": sorted(values)}


def playbook_step(
    playbook: str,
    extra: Callable[[Session, Server], dict[str, Any]] | None = None,
    skip_unplaced: bool = False,
) -> Step:
    """A run of `playbook` on the server's host with its variables, and
    `extra(session, server)`'s on top. With `skip_unplaced`, a server never
    placed on a host (suspended or ended before provisioning) has nothing to
    run on and the step is skipped rather than failed."""

    def run(context: StepContext) -> dict[str, Any]:
        with context.session() as session:
            server = server_of(session, context)
            if skip_unplaced and (server.host_id is None or server.slot is None):
                return {"skipped": "the server was never placed on a host"}
            host, variables = server_variables(session, server, context.params.get("version"))
            variables.update(extra(session, server) if extra else {})
        result = run_on_host(context, playbook, host, variables)
        summary = {h: vars(s) for h, s in result.hosts.items()}
        if result.succeeded:
            return {"playbook": playbook, "hosts": summary, "seconds": round(result.seconds, 1)}
        unreachable = any(s.unreachable for s in result.hosts.values())
        where = ", ".join(result.failed_hosts()) or host.name
        raise playbook_failure(
            f"{playbook} {result.status} (rc {result.rc}) on {where}", unreachable, context.attempt
        )

    return Step(f"run_{playbook.removesuffix('.yml')}", run, attempts=3, backoff_seconds=20)


def server_variables(
    session: Session, server: Server, version: str | None
) -> tuple[Host, dict[str, Any]]:
    """The server's host and what its playbooks are given."""
    host = host_of(session, server)
    values = server_secrets.ensure(session, server.id)
    return host, deployment_variables(session, server, host, values, version)


def playbook_failure(message: str, unreachable: bool, attempt: int) -> StepRetry | StepFailed:
    # An unreachable host may come back; a failed task usually fails again
    # the same way, but one more try costs little and rides out blips.
    return StepRetry(message) if unreachable or attempt < 2 else StepFailed(message)


def health_gate(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = server_of(session, context)
        host = host_of(session, server)
        expected = context.params.get("version") or get_settings().mastodon_version
        direct = get_settings().health_check == "direct"
        report = health.check(
            health.base_url(server, host), expected, server.domain if direct else None
        )
        if not report.healthy:
            raise StepRetry(f"health gate: {report.detail}")
        server.version = report.version
        session.add(server)
        session.commit()
    return {"version": report.version}


def activate(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = server_of(session, context)
        if server.state == ServerState.provisioning:
            apply_event(session, server, "provisioned", Actor.system, "herd")
            session.commit()
        return {"state": server.state.value}


def mark_failed(context: StepContext, reason: str) -> None:
    with context.session() as session:
        server = session.get(Server, context.server_id) if context.server_id else None
        if server is not None and server.state == ServerState.provisioning:
            apply_event(session, server, "fail", Actor.system, "herd", reason[:500])
            session.commit()


PROVISION = Pipeline(
    "provision",
    (
        Step("reserve_host", reserve_host, attempts=30, backoff_seconds=10),
        Step("generate_secrets", generate_secrets),
        Step("prepare_storage", prepare_storage),
        PREPARE_IDENTITY,
        playbook_step("provision.yml"),
        playbook_step("brand.yml"),
        Step("health_gate", health_gate, attempts=8, backoff_seconds=3),
        Step("activate", activate),
    ),
    on_failure=mark_failed,
)
