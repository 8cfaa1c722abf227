from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.fleet import service
from controlplane.fleet.schemas import Ec2HostLaunch, HostCreate, HostOut, HostUpdate
from controlplane.fleet.service import HostView
from controlplane.pagination import Page

router = APIRouter(prefix=API_PREFIX, tags=["hosts"])


def _out(view: HostView) -> HostOut:
    host = view.host
    return HostOut(
        **host.model_dump(exclude={"ssh_private_key_encrypted"}),
        has_ssh_key=host.ssh_private_key_encrypted is not None,
        servers=view.servers,
    )


@router.get("/hosts", response_model=Page[HostOut])
def list_hosts(principal: PrincipalDep, session: SessionDep, page: PageDep) -> Page[HostOut]:
    views, cursor = service.list_hosts(session, principal, page)
    return Page(items=[_out(v) for v in views], next_cursor=cursor)


@router.post("/hosts", response_model=HostOut, status_code=201)
def register_host(data: HostCreate, principal: PrincipalDep, session: SessionDep) -> HostOut:
    return _out(service.register_host(session, principal, data))


@router.post("/hosts/ec2", response_model=HostOut, status_code=202)
def launch_ec2_host(data: Ec2HostLaunch, principal: PrincipalDep, session: SessionDep) -> HostOut:
    """Create a host on EC2. Answers at once with the host `pending`; it
    becomes `active` when the instance runs (follow its create_host job)."""
    return _out(service.launch_ec2_host(session, principal, data))


@router.get("/hosts/{host_id}", response_model=HostOut)
def get_host(host_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> HostOut:
    return _out(service.get_host(session, principal, host_id))


@router.patch("/hosts/{host_id}", response_model=HostOut)
def update_host(
    host_id: uuid.UUID, data: HostUpdate, principal: PrincipalDep, session: SessionDep
) -> HostOut:
    return _out(service.update_host(session, principal, host_id, data))


@router.delete("/hosts/{host_id}", status_code=204)
def remove_host(host_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> Response:
    service.remove_host(session, principal, host_id)
    return Response(status_code=204)
