"""Provisioning: from a server that is `provisioning` to one that is
`active` on a host, healthy, on the version it should run."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from controlplane.fleet import placement
from controlplane.fleet.models import Host
from controlplane.servers import secrets as server_secrets
from controlplane.servers.lifecycle import Actor, ServerState
from controlplane.servers.models import Server
from controlplane.servers.service import apply_event
from controlplane.settings import get_settings
from controlplane.storage import storage_variables
from provisioning import health
from provisioning.ansible import TaskEvent, run_playbook
from provisioning.hosts import inventory_for
from provisioning.pipeline import Pipeline, Step, StepContext, StepFailed, StepRetry
from provisioning.steps.storage import prepare_storage
from provisioning.variables import server_variables


def _server(session: Session, context: StepContext) -> Server:
    assert context.server_id is not None
    server = session.get(Server, context.server_id)
    if server is None:
        raise StepFailed("the server no longer exists")
    return server


def _host(session: Session, server: Server) -> Host:
    host = session.get(Host, server.host_id) if server.host_id else None
    if host is None:
        raise StepFailed("the server has no host")
    return host


def reserve_host(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = _server(session, context)
        try:
            host = placement.place(session, server)
        except placement.NoCapacity as exc:
            # Capacity may come (staff add a host): keep retrying, visibly.
            raise StepRetry(str(exc)) from exc
        session.commit()
        return {"host": host.name, "slot": server.slot}


def generate_secrets(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        values = server_secrets.ensure(session, _server(session, context).id)
        session.commit()
    return {"generated": sorted(values)}


def prepare_identity(context: StepContext) -> dict[str, Any]:
    return {"skipped": "single sign-on is not enabled for this server"}


def playbook_step(playbook: str) -> Step:
    def run(context: StepContext) -> dict[str, Any]:
        with context.session() as session:
            server = _server(session, context)
            host = _host(session, server)
            values = server_secrets.ensure(session, server.id)
            variables = {
                **server_variables(server, host, values, context.params.get("version")),
                **storage_variables(session, server.id),
            }
            inventory = inventory_for([host])

        def record(event: TaskEvent) -> None:
            context.record_event(
                host=event.host,
                play=event.play,
                task=event.task,
                action=event.action,
                status=event.status,
                changed=event.changed,
                duration_ms=event.duration_ms,
                result=event.result,
            )

        result = run_playbook(
            playbook,
            inventory,
            variables,
            get_settings().data_dir / "runs",
            f"{context.job_id}-{context.step}-{context.attempt}",
            record,
            context.redactor,
            timeout_seconds=get_settings().playbook_timeout_seconds,
            should_cancel=context.should_cancel,
            skip_tags=get_settings().playbook_skip_tags,
        )
        summary = {h: vars(s) for h, s in result.hosts.items()}
        if result.succeeded:
            return {"playbook": playbook, "hosts": summary, "seconds": round(result.seconds, 1)}
        unreachable = any(s.unreachable for s in result.hosts.values())
        where = ", ".join(result.failed_hosts()) or host.name
        message = f"{playbook} {result.status} (rc {result.rc}) on {where}"
        # An unreachable host may come back; a failed task usually fails again
        # the same way, but one more try costs little and rides out blips.
        raise StepRetry(message) if unreachable or context.attempt < 2 else StepFailed(message)

    return Step(f"run_{playbook.removesuffix('.yml')}", run, attempts=3, backoff_seconds=20)


def health_gate(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        server = _server(session, context)
        host = _host(session, server)
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
        server = _server(session, context)
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
        Step("prepare_identity", prepare_identity),
        playbook_step("provision.yml"),
        playbook_step("brand.yml"),
        Step("health_gate", health_gate, attempts=8, backoff_seconds=3),
        Step("activate", activate),
    ),
    on_failure=mark_failed,
)
