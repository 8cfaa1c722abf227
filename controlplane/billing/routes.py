from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from controlplane.billing import service
from controlplane.billing.schemas import PlanCreate, PlanOut, PlanUpdate
from controlplane.deps import API_PREFIX, PageDep, PrincipalDep, SessionDep
from controlplane.pagination import Page

router = APIRouter(prefix=API_PREFIX, tags=["plans"])


@router.get("/plans", response_model=Page[PlanOut])
def list_plans(
    principal: PrincipalDep,
    session: SessionDep,
    page: PageDep,
    include_inactive: Annotated[bool, Query(description="staff only")] = False,
) -> Page[PlanOut]:
    items, cursor = service.list_plans(session, principal, page, include_inactive)
    return Page(items=[PlanOut.model_validate(p) for p in items], next_cursor=cursor)


@router.get("/plans/{plan_id}", response_model=PlanOut)
def get_plan(plan_id: uuid.UUID, principal: PrincipalDep, session: SessionDep) -> PlanOut:
    return PlanOut.model_validate(service.get_plan(session, principal, plan_id))


@router.post("/plans", response_model=PlanOut, status_code=201)
def create_plan(data: PlanCreate, principal: PrincipalDep, session: SessionDep) -> PlanOut:
    return PlanOut.model_validate(service.create_plan(session, principal, data))


@router.patch("/plans/{plan_id}", response_model=PlanOut)
def update_plan(
    plan_id: uuid.UUID, data: PlanUpdate, principal: PrincipalDep, session: SessionDep
) -> PlanOut:
    return PlanOut.model_validate(service.update_plan(session, principal, plan_id, data))
