"""Creating a host through a provider: launch, wait until it runs, record
its address and open it for servers."""

from __future__ import annotations

import uuid
from typing import Any

from sqlmodel import Session

from controlplane.fleet import ec2
from controlplane.fleet.models import Host, HostState
from provisioning.pipeline import Pipeline, Step, StepContext, StepFailed, StepRetry


def _host(session: Session, context: StepContext) -> Host:
    host = session.get(Host, uuid.UUID(context.params["host_id"]))
    if host is None:
        raise StepFailed("the host record is gone")
    return host


def launch(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        host = _host(session, context)
        if host.provider_ref:
            return {"instance_id": host.provider_ref}
        spec = ec2.LaunchSpec(**host.launch_spec)
        try:
            instance = ec2.find_for_host(host.id) or ec2.launch(host.id, host.name, spec)
        except ec2.Ec2Error as exc:
            raise StepRetry(str(exc)) from exc
        host.provider_ref = instance.instance_id
        session.add(host)
        session.commit()
        return {"instance_id": instance.instance_id}


def wait_running(context: StepContext) -> dict[str, Any]:
    with context.session() as session:
        host = _host(session, context)
        assert host.provider_ref is not None
        try:
            instance = ec2.describe(host.provider_ref)
        except ec2.Ec2Error as exc:
            raise StepRetry(str(exc)) from exc
        if instance.state in {"terminated", "shutting-down"}:
            raise StepFailed(f"instance {instance.instance_id} is {instance.state}")
        if instance.state != "running" or not instance.address:
            raise StepRetry(f"instance {instance.instance_id} is {instance.state}")
        host.address = instance.address
        host.state = HostState.active
        session.add(host)
        session.commit()
        return {"address": instance.address}


def mark_failed(context: StepContext, reason: str) -> None:
    with context.session() as session:
        host = session.get(Host, uuid.UUID(context.params["host_id"]))
        if host is not None and host.state == HostState.pending:
            host.state = HostState.failed
            session.add(host)
            session.commit()


CREATE_HOST = Pipeline(
    "create_host",
    (
        Step("launch", launch, attempts=5, backoff_seconds=10),
        # EC2 takes tens of seconds to start an instance: poll gently.
        Step("wait_running", wait_running, attempts=40, backoff_seconds=2, max_backoff_seconds=15),
    ),
    on_failure=mark_failed,
)
