"""The plan catalogue."""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from controlplane.audit import service as audit
from controlplane.auth.principal import Principal
from controlplane.auth.roles import StaffPerm
from controlplane.billing.models import Plan
from controlplane.billing.schemas import PlanCreate, PlanUpdate
from controlplane.pagination import PageRequest, finish_page, paginate
from controlplane.problems import AlreadyExists, InvalidInput, NotFound


def list_plans(
    session: Session, principal: Principal, page: PageRequest, include_inactive: bool = False
) -> tuple[list[Plan], str | None]:
    statement = select(Plan)
    # Retired plans stay on the servers that have them but are offered to
    # no one; only staff see them in the catalogue.
    if not (include_inactive and principal.is_staff):
        statement = statement.where(col(Plan.active))
    rows = session.exec(paginate(statement, Plan.id, page)).all()
    return finish_page(rows, page, lambda plan: plan.id)


def get_plan(session: Session, principal: Principal, plan_id: uuid.UUID) -> Plan:
    plan = session.get(Plan, plan_id)
    if plan is None or not (plan.active or principal.is_staff):
        raise NotFound("plan not found")
    return plan


def create_plan(session: Session, principal: Principal, data: PlanCreate) -> Plan:
    principal.require_staff(StaffPerm.plans_manage)
    if session.exec(select(Plan.id).where(Plan.code == data.code)).first():
        raise AlreadyExists(f"a plan with code '{data.code}' exists")
    plan = Plan(**data.model_dump())
    session.add(plan)
    audit.record(session, principal, "plan.create", "plan", plan.id, None, {"code": plan.code})
    return plan


def update_plan(
    session: Session, principal: Principal, plan_id: uuid.UUID, data: PlanUpdate
) -> Plan:
    principal.require_staff(StaffPerm.plans_manage)
    plan = get_plan(session, principal, plan_id)
    changes = data.model_dump(exclude_unset=True)
    if any(value is None for value in changes.values()):
        raise InvalidInput("plan fields cannot be null")
    for field, value in changes.items():
        setattr(plan, field, value)
    session.add(plan)
    audit.record(
        session, principal, "plan.update", "plan", plan.id, None, {"fields": sorted(changes)}
    )
    return plan
