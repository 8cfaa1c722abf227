"""Placing a server on a host, and what its place on the host fixes.

A host runs up to `capacity` servers. Each server gets the lowest free slot
on its host; the slot decides its ports, its Unix user and its Redis
database, so tenants on one host never share a process, a port or a cache
(Mastodon 4.4 removed REDIS_NAMESPACE: one Redis database per tenant).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, func
from sqlmodel import Session, col, select

from controlplane.fleet.models import Host, HostState
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server

# Redis ships with 16 databases; a host with more slots needs `databases`
# raised in its redis.conf.
REDIS_DATABASES = 16


class NoCapacity(Exception):
    """No active host has a free slot."""


@dataclass(frozen=True)
class Slot:
    number: int
    web_port_base: int = 3000
    streaming_port_base: int = 4000

    @classmethod
    def on(cls, host: Host, number: int) -> Slot:
        return cls(number, host.web_port_base, host.streaming_port_base)

    @property
    def web_port(self) -> int:
        return self.web_port_base + self.number

    @property
    def streaming_port(self) -> int:
        return self.streaming_port_base + self.number

    @property
    def unix_user(self) -> str:
        return f"mastodon{self.number}"

    @property
    def redis_db(self) -> int:
        return self.number % REDIS_DATABASES


def place(session: Session, server: Server) -> Host:
    """Give `server` a host and slot, or return the ones it already has.

    Candidates are read without a lock, so two workers placing at once may
    both see room on the same host. Each then locks the host row (PostgreSQL;
    SQLite serialises writers anyway) and reads its slots again: the later
    one finds the host full and tries the next candidate. The unique (host,
    slot) constraint is the last guard: a flush that loses fails and the
    step is retried. A slot is always below the host's capacity."""
    if server.host_id is not None and server.slot is not None:
        host = session.get(Host, server.host_id)
        assert host is not None
        return host
    load = func.count(col(Server.id))
    candidates = session.exec(
        select(Host, load)
        .outerjoin(
            Server, and_(col(Server.host_id) == Host.id, col(Server.state) != ServerState.deleted)
        )
        .where(Host.state == HostState.active)
        .group_by(col(Host.id))
        .having(load < Host.capacity)
        .order_by(load, col(Host.name))
    ).all()
    for candidate, _load in candidates:
        host = session.exec(
            select(Host).where(col(Host.id) == candidate.id).with_for_update()
        ).one()
        slot = free_slot(session, host)
        if slot is None:
            continue
        server.host_id, server.slot = host.id, slot
        session.add(server)
        session.flush()
        return host
    raise NoCapacity("no active host has room for another server")


def free_slot(session: Session, host: Host) -> int | None:
    """The lowest slot below the host's capacity that no server holds."""
    taken = set(
        session.exec(
            select(Server.slot).where(Server.host_id == host.id, col(Server.slot).is_not(None))
        ).all()
    )
    return next((n for n in range(host.capacity) if n not in taken), None)
