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
    The unique (host, slot) constraint settles a race between two workers:
    the loser's flush fails and its step is retried."""
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
    if not candidates:
        raise NoCapacity("no active host has room for another server")
    host = candidates[0][0]
    taken = set(
        session.exec(
            select(Server.slot).where(Server.host_id == host.id, col(Server.slot).is_not(None))
        ).all()
    )
    server.host_id = host.id
    server.slot = next(n for n in range(host.capacity + len(taken) + 1) if n not in taken)
    session.add(server)
    session.flush()
    return host
