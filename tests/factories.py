"""Test data, written straight through the models (not the API), so a test
of an endpoint does not depend on the endpoints it is not testing."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel

from controlplane.auth.roles import OrgRole, Scope, StaffRole
from controlplane.billing.models import Plan
from controlplane.crypto import digest
from controlplane.fleet.models import Host
from controlplane.jobs.models import Job, JobEvent, JobState
from controlplane.servers.lifecycle import ServerState
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import Invitation, Membership, Organisation, User
from controlplane.tokens import service as tokens
from controlplane.tokens.models import ApiToken

_seq = itertools.count(1)


def user(session: Session, email: str | None = None, staff_role: StaffRole | None = None) -> User:
    row = User(email=email or f"user{next(_seq)}@example-herd.org", staff_role=staff_role)
    session.add(row)
    session.flush()
    return row


def organisation(session: Session, slug: str | None = None) -> Organisation:
    n = next(_seq)
    row = Organisation(slug=slug or f"org-{n}", name=f"Organisation {n}", timezone="Europe/Berlin")
    session.add(row)
    session.flush()
    return row


def member(session: Session, org: Organisation, role: OrgRole, email: str | None = None) -> User:
    person = user(session, email)
    session.add(Membership(organisation_id=org.id, user_id=person.id, role=role))
    session.flush()
    return person


def token(
    session: Session,
    owner: User,
    scopes: set[Scope] | None = None,
    lifetime: timedelta = timedelta(days=30),
    organisation_id: uuid.UUID | None = None,
) -> tuple[ApiToken, str]:
    row, plaintext = tokens.issue(
        session, owner, "test", scopes or {Scope.read, Scope.write}, lifetime, organisation_id
    )
    session.flush()
    return row, plaintext


def plan(session: Session, code: str = "small", active: bool = True) -> Plan:
    row = Plan(
        code=code,
        name=code.title(),
        monthly_price_cents=4900,
        max_users=500,
        storage_gb=50,
        active=active,
    )
    session.add(row)
    session.flush()
    return row


def server(
    session: Session,
    org: Organisation,
    the_plan: Plan,
    state: ServerState = ServerState.requested,
    domain: str | None = None,
    host: Host | None = None,
) -> Server:
    row = Server(
        organisation_id=org.id,
        plan_id=the_plan.id,
        domain=domain or f"s{next(_seq)}.herd-test.social",
        state=state,
        title="A server",
        host_id=host.id if host else None,
    )
    session.add(row)
    session.flush()
    return row


def host(session: Session, name: str | None = None) -> Host:
    row = Host(name=name or f"host-{next(_seq)}", address="127.0.0.1", ssh_port=2222, capacity=5)
    session.add(row)
    session.flush()
    return row


def invitation(
    session: Session, org: Organisation, email: str, role: OrgRole
) -> tuple[Invitation, str]:
    plaintext = f"inv_test_{uuid.uuid4().hex}"
    row = Invitation(
        organisation_id=org.id,
        email=email,
        role=role,
        token_digest=digest(plaintext),
        expires_at=utcnow() + timedelta(days=7),
    )
    session.add(row)
    session.flush()
    return row, plaintext


PRINCIPALS = (
    "owner",
    "admin",
    "billing",
    "viewer",
    "outsider",
    "operator",
    "staff_admin",
    "staff_without_scope",
    "readonly",
    "expired",
    "revoked",
    "anonymous",
)


@dataclass
class World:
    """Two organisations, every kind of caller, and one of each resource."""

    ids: dict[str, uuid.UUID] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    invitation_token: str = ""

    def headers(self, principal: str) -> dict[str, str]:
        if principal == "anonymous":
            return {}
        return {"Authorization": f"Bearer {self.tokens[principal]}"}


def build_world(engine: Engine) -> World:
    world = World()
    with Session(engine, expire_on_commit=False) as session:
        org_a, org_b = organisation(session, "org-a"), organisation(session, "org-b")
        people = {
            role: member(session, org_a, OrgRole(role), f"{role}@org-a.example-herd.org")
            for role in ("owner", "admin", "billing", "viewer")
        }
        people["outsider"] = member(session, org_b, OrgRole.owner, "owner@org-b.example-herd.org")
        staff_scopes = {Scope.read, Scope.write, Scope.staff}
        operator = user(session, "ops@provider.example-herd.org", StaffRole.operator)
        staff_admin = user(session, "admin@provider.example-herd.org", StaffRole.admin)
        for name, person in people.items():
            world.tokens[name] = token(session, person)[1]
        world.tokens["operator"] = token(session, operator, staff_scopes)[1]
        world.tokens["staff_admin"] = token(session, staff_admin, staff_scopes)[1]
        world.tokens["staff_without_scope"] = token(session, staff_admin)[1]
        world.tokens["readonly"] = token(session, people["owner"], {Scope.read})[1]
        world.tokens["expired"] = token(session, people["owner"], lifetime=timedelta(seconds=-1))[1]
        revoked, world.tokens["revoked"] = token(session, people["owner"])
        revoked.revoked_at = utcnow()
        session.add(revoked)

        small, b_plan = plan(session, "small"), plan(session, "retired", active=False)
        the_host = host(session, "h1")
        active = server(
            session, org_a, small, ServerState.active, "live.org-a-herd.social", the_host
        )
        requested = server(session, org_a, small, ServerState.requested, "new.org-a-herd.social")
        suspended = server(session, org_a, small, ServerState.suspended, "paused.org-a-herd.social")
        failed = server(session, org_a, small, ServerState.failed, "broken.org-a-herd.social")
        running_job = Job(kind="provision", server_id=active.id, state=JobState.running)
        finished_job = Job(kind="provision", server_id=active.id, state=JobState.succeeded)
        session.add_all([running_job, finished_job])
        session.flush()
        session.add(
            JobEvent(
                job_id=finished_job.id, step="run_provision", host="h1", task="Install", status="ok"
            )
        )
        spare = member(session, org_a, OrgRole.viewer, "spare@org-a.example-herd.org")
        bound_token, _ = token(session, spare, organisation_id=org_a.id)
        pending, world.invitation_token = invitation(
            session, org_a, "newcomer@example-herd.org", OrgRole.viewer
        )
        empty_host = host(session, "h-empty")
        world.ids.update(
            org=org_a.id,
            org_b=org_b.id,
            server=active.id,
            requested_server=requested.id,
            suspended_server=suspended.id,
            failed_server=failed.id,
            job=running_job.id,
            finished_job=finished_job.id,
            host=the_host.id,
            empty_host=empty_host.id,
            plan=small.id,
            retired_plan=b_plan.id,
            spare_user=spare.id,
            org_token=bound_token.id,
            invitation=pending.id,
            owner_user=people["owner"].id,
        )
        session.commit()
    return world


def fingerprint(engine: Engine) -> dict[str, Any]:
    """Every row of every table, to show a refused request changed nothing.
    api_tokens.last_used_at is left out: authenticating records use, by design."""
    snapshot: dict[str, Any] = {}
    with engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            columns = [c.name for c in table.columns if c.name != "last_used_at"]
            key = ", ".join(c.name for c in table.primary_key.columns)
            rows = connection.execute(
                text(f'SELECT {", ".join(columns)} FROM "{table.name}" ORDER BY {key}')
            ).all()
            snapshot[table.name] = [tuple(map(str, row)) for row in rows]
    return snapshot
