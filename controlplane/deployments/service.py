"""The preview of what Herd would deploy on a server's host, and starting a
drift check of that host (the `inspect` job)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import Session

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.deployments.errors import NotPlaced
from controlplane.fleet.models import Host
from controlplane.jobs import service as jobs
from controlplane.jobs.models import Job
from controlplane.problems import NotFound
from controlplane.servers import secrets as server_secrets
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from provisioning.deployment import PreviewFile, preview_files
from provisioning.redaction import MASK
from provisioning.variables import deployment_variables

INSPECT = "inspect"


@dataclass(frozen=True)
class Preview:
    server_id: uuid.UUID
    domain: str
    mask: str
    files: list[PreviewFile]


def _visible_server(session: Session, principal: Principal, server_id: uuid.UUID) -> Server:
    server = session.get(Server, server_id)
    if server is None or not principal.can_see(server.organisation_id):
        raise NotFound("server not found")
    return server


def _placed_host(session: Session, server: Server) -> Host:
    if server.state == ServerState.deleted:
        raise NotPlaced("the server is deleted: nothing is deployed for it any more")
    host = session.get(Host, server.host_id) if server.host_id else None
    if host is None or server.slot is None:
        raise NotPlaced(
            f"the server is {server.state.value} and not placed on a host yet; "
            "its files can be rendered once provisioning has given it one",
            state=server.state.value,
        )
    return host


def preview(session: Session, principal: Principal, server_id: uuid.UUID) -> Preview:
    """The files Herd would deploy on the server's host now, every secret
    value masked. Staff read it for support; in the organisation, the roles
    that configure the server (servers.update: owner and admin) may, while
    billing and viewers, who only follow it, may not."""
    server = _visible_server(session, principal, server_id)
    if principal.is_staff:
        principal.require_staff(StaffPerm.fleet_read)
    else:
        principal.require(server.organisation_id, Perm.servers_update, "server")
    host = _placed_host(session, server)
    stored = server_secrets.load(session, server.id)
    if stored is None:
        # Placement and the secrets are two steps of the provisioning job.
        raise NotPlaced(
            "the server was placed a moment ago and its secrets are not generated yet; "
            "try again shortly",
            state=server.state.value,
        )
    variables = deployment_variables(session, server, host, stored)
    files = preview_files(variables, known_secrets=stored.values())
    return Preview(server.id, server.domain, MASK, files)


def start_drift_check(session: Session, principal: Principal, server_id: uuid.UUID) -> Job:
    """Record an `inspect` job comparing the server's files on its host with
    what Herd would deploy; a check already under way is returned instead of
    a second one. It runs a playbook over SSH (read-only, but on the host),
    hence host management's permission."""
    from provisioning.registry import pipelines

    principal.require_staff(StaffPerm.hosts_manage)
    server = _visible_server(session, principal, server_id)
    _placed_host(session, server)
    job = jobs.active_job(session, server.id, INSPECT)
    if job is None:
        job = jobs.create_job(session, INSPECT, pipelines()[INSPECT].step_names, server.id)
    audit.record(
        session,
        principal,
        "server.drift_check",
        "server",
        server.id,
        server.organisation_id,
        {"job": str(job.id)},
    )
    return job
