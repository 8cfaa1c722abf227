"""Read helpers the pages need beside the services: names for ids in one
query per table, the newest job of a server, the domain check as you type.
Each is called only after a service has authorised the caller."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlmodel import Session, col, select

from controlplane.fleet.models import Host
from controlplane.jobs.models import Job
from controlplane.servers.domains import InvalidDomain, normalise_domain, unicode_form
from controlplane.servers.models import Server
from controlplane.settings import get_settings
from controlplane.tenancy.models import Organisation


def organisation_names(session: Session, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.exec(
        select(Organisation.id, Organisation.name).where(col(Organisation.id).in_(wanted))
    ).all()
    return dict(rows)


def host_names(session: Session, ids: Iterable[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.exec(select(Host.id, Host.name).where(col(Host.id).in_(wanted))).all())


def latest_job(session: Session, server_id: uuid.UUID) -> Job | None:
    return session.exec(
        select(Job).where(Job.server_id == server_id).order_by(col(Job.id).desc()).limit(1)
    ).first()


def check_domain(session: Session, raw: str) -> tuple[bool, str, str | None]:
    """(acceptable, what to tell the person, the ASCII form): the same
    validation the API's order runs, then whether the domain is still free."""
    try:
        domain = normalise_domain(raw, get_settings().reserved_domains)
    except InvalidDomain as exc:
        return False, str(exc), None
    if session.exec(select(Server.id).where(Server.domain == domain)).first():
        return False, f"a server for {unicode_form(domain)} has already been ordered", domain
    shown = unicode_form(domain)
    note = f" (stored as {domain})" if shown != domain else ""
    return True, f"{shown} is available{note}", domain
