from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from controlplane.audit import service
from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.pagination import Page
from controlplane.schemas import Output

router = APIRouter(prefix=API_PREFIX, tags=["audit"])


class AuditEntryOut(Output):
    id: uuid.UUID
    at: datetime
    actor_user_id: uuid.UUID | None
    actor_label: str
    organisation_id: uuid.UUID | None
    action: str
    target_type: str
    target_id: str | None
    request_id: str | None
    details: dict[str, Any]


ActionQuery = Annotated[str | None, Query(max_length=60)]
TargetQuery = Annotated[str | None, Query(max_length=64)]


@router.get("/audit", response_model=Page[AuditEntryOut])
def list_all(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    organisation_id: Annotated[uuid.UUID | None, Query()] = None,
    action: ActionQuery = None,
    target_id: TargetQuery = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
) -> Page[AuditEntryOut]:
    items, cursor = service.list_entries(
        session, principal, page, organisation_id, action, target_id, since, fleet_wide=True
    )
    return Page(items=[AuditEntryOut.model_validate(e) for e in items], next_cursor=cursor)


@router.get("/organisations/{org_id}/audit", response_model=Page[AuditEntryOut])
def list_for_organisation(
    org_id: uuid.UUID,
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    action: ActionQuery = None,
    target_id: TargetQuery = None,
    since: Annotated[AwareDatetime | None, Query()] = None,
) -> Page[AuditEntryOut]:
    items, cursor = service.list_entries(session, principal, page, org_id, action, target_id, since)
    return Page(items=[AuditEntryOut.model_validate(e) for e in items], next_cursor=cursor)
