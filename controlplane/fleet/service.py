"""Registering and managing the hosts servers run on."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import StaffPerm
from controlplane.crypto import secret_box
from controlplane.fleet.models import Host, HostState
from controlplane.fleet.schemas import Ec2HostLaunch, HostCreate, HostUpdate
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import AlreadyExists, Conflict, InvalidInput, NotFound
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server


@dataclass(frozen=True)
class HostView:
    host: Host
    servers: int


def _placed_counts(session: Session, host_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    if not host_ids:
        return {}
    rows = session.exec(
        select(Server.host_id, func.count())
        .where(col(Server.host_id).in_(host_ids), Server.state != ServerState.deleted)
        .group_by(col(Server.host_id))
    ).all()
    return {host_id: count for host_id, count in rows if host_id is not None}


def _get(session: Session, host_id: uuid.UUID) -> Host:
    host = session.get(Host, host_id)
    if host is None:
        raise NotFound("host not found")
    return host


def list_hosts(
    session: Session, principal: Principal, page: PageRequest
) -> tuple[list[HostView], str | None]:
    principal.require_staff(StaffPerm.fleet_read)
    rows = session.exec(paginate(select(Host), Host.id, page)).all()
    hosts, cursor = finish_page(rows, page, lambda host: host.id)
    counts = _placed_counts(session, [host.id for host in hosts])
    return [HostView(host, counts.get(host.id, 0)) for host in hosts], cursor


def get_host(session: Session, principal: Principal, host_id: uuid.UUID) -> HostView:
    principal.require_staff(StaffPerm.fleet_read)
    host = _get(session, host_id)
    return HostView(host, _placed_counts(session, [host.id]).get(host.id, 0))


def register_host(session: Session, principal: Principal, data: HostCreate) -> HostView:
    principal.require_staff(StaffPerm.hosts_manage)
    if session.exec(select(Host.id).where(Host.name == data.name)).first():
        raise AlreadyExists(f"a host named '{data.name}' exists")
    host = Host(**data.model_dump(exclude={"ssh_private_key"}))
    if data.ssh_private_key is not None:
        host.ssh_private_key_encrypted = secret_box().encrypt(
            data.ssh_private_key.get_secret_value()
        )
    session.add(host)
    audit.record(
        session,
        principal,
        "host.register",
        "host",
        host.id,
        None,
        {"name": host.name, "address": host.address, "capacity": host.capacity},
    )
    return HostView(host, 0)


def launch_ec2_host(session: Session, principal: Principal, data: Ec2HostLaunch) -> HostView:
    """Record a host to be created on EC2 and the job that creates it; the
    host takes servers once the instance runs."""
    from controlplane.jobs import service as jobs
    from provisioning.registry import pipelines

    principal.require_staff(StaffPerm.hosts_manage)
    if session.exec(select(Host.id).where(Host.name == data.name)).first():
        raise AlreadyExists(f"a host named '{data.name}' exists")
    host = Host(
        name=data.name,
        address="",  # known once the instance runs
        ssh_user=data.ssh_user,
        capacity=data.capacity,
        labels=data.labels,
        state=HostState.pending,
        provider="ec2",
        launch_spec=data.model_dump(
            include={"image_id", "instance_type", "subnet_id", "key_name", "security_group_ids"}
        ),
    )
    if data.ssh_private_key is not None:
        host.ssh_private_key_encrypted = secret_box().encrypt(
            data.ssh_private_key.get_secret_value()
        )
    session.add(host)
    session.flush()
    job = jobs.create_job(
        session,
        "create_host",
        pipelines()["create_host"].step_names,
        params={"host_id": str(host.id)},
    )
    audit.record(
        session,
        principal,
        "host.launch",
        "host",
        host.id,
        None,
        {"name": host.name, "provider": "ec2", "job": str(job.id), **host.launch_spec},
    )
    return HostView(host, 0)


def update_host(
    session: Session, principal: Principal, host_id: uuid.UUID, data: HostUpdate
) -> HostView:
    principal.require_staff(StaffPerm.hosts_manage)
    host = _get(session, host_id)
    changes = data.model_dump(exclude_unset=True, exclude={"ssh_private_key"})
    if any(value is None for value in changes.values()):
        raise InvalidInput("host fields cannot be null")
    for field, value in changes.items():
        setattr(host, field, value)
    changed = sorted(changes)
    if "ssh_private_key" in data.model_fields_set:
        key = data.ssh_private_key
        host.ssh_private_key_encrypted = (
            secret_box().encrypt(key.get_secret_value()) if key is not None else None
        )
        changed.append("ssh_private_key")
    session.add(host)
    audit.record(session, principal, "host.update", "host", host.id, None, {"fields": changed})
    return HostView(host, _placed_counts(session, [host.id]).get(host.id, 0))


def remove_host(session: Session, principal: Principal, host_id: uuid.UUID) -> None:
    principal.require_staff(StaffPerm.hosts_manage)
    host = _get(session, host_id)
    placed = session.exec(select(Server.id).where(Server.host_id == host.id).limit(1)).first()
    if placed is not None:
        raise Conflict("servers are placed on this host; drain it and move them first")
    session.delete(host)
    audit.record(session, principal, "host.remove", "host", host.id, None, {"name": host.name})
