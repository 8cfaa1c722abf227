"""Writing and reading the audit log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from controlplane.audit.models import AuditEntry
from controlplane.auth.principal import Principal
from controlplane.auth.roles import Perm, StaffPerm
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.requestctx import current_request_id


def record(
    session: Session,
    actor: Principal | None,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str | None,
    organisation_id: uuid.UUID | None,
    details: dict[str, Any] | None = None,
    actor_label: str | None = None,
) -> AuditEntry:
    """Add an entry to the caller's unit of work: it commits with the change it
    describes, or not at all. `details` must never hold a secret."""
    entry = AuditEntry(
        actor_user_id=actor.user_id if actor else None,
        actor_token_id=actor.token_id if actor else None,
        actor_label=actor_label or (actor.label if actor else "system"),
        organisation_id=organisation_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        request_id=current_request_id(),
        details=details or {},
    )
    session.add(entry)
    return entry


def list_entries(
    session: Session,
    principal: Principal,
    page: PageRequest,
    organisation_id: uuid.UUID | None,
    action: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    *,
    fleet_wide: bool = False,
) -> tuple[list[AuditEntry], str | None]:
    """One organisation's log for its admins, or (fleet_wide) everyone's for
    staff, optionally narrowed to one organisation."""
    if fleet_wide:
        principal.require_staff(StaffPerm.fleet_read)
    elif organisation_id is None:
        raise ValueError("an organisation's log needs its id")
    else:
        principal.require(organisation_id, Perm.audit_read)
    statement = select(AuditEntry)
    if organisation_id is not None:
        statement = statement.where(AuditEntry.organisation_id == organisation_id)
    if action:
        statement = statement.where(AuditEntry.action == action)
    if target_id:
        statement = statement.where(AuditEntry.target_id == target_id)
    if since:
        statement = statement.where(AuditEntry.at >= since)
    rows = session.exec(paginate(statement, AuditEntry.id, page)).all()
    return finish_page(rows, page, lambda entry: entry.id)
