"""tests/factories.py's world, plus what bundles need: organisation A holds
a paid support contract, its active server is placed (slot 0 on h1) with its
secrets, and some of its people hold tokens with the `playbooks` scope.
Organisation B (the outsider's) has no contract."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.auth.roles import Scope
from controlplane.billing.models import AddOn, AddOnOrder
from controlplane.servers import secrets
from controlplane.servers.models import Server
from controlplane.sqltypes import utcnow
from controlplane.tenancy.models import User
from tests import factories
from tests.factories import World, build_world

PASSPHRASE = "correct horse battery staple 42"
PLAYBOOKS = {Scope.read, Scope.write, Scope.playbooks}


@dataclass
class ContractWorld:
    world: World
    secrets: dict[str, str]
    domain: str
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, name: str) -> dict[str, str]:
        if name in self.tokens:
            return {"Authorization": f"Bearer {self.tokens[name]}"}
        return self.world.headers(name)

    @property
    def org(self) -> str:
        return str(self.world.ids["org"])


def _person(session: Session, email: str) -> User:
    from sqlmodel import select

    user = session.exec(select(User).where(User.email == email)).first()
    assert user is not None
    return user


def contract_world(engine: Engine) -> ContractWorld:
    world = build_world(engine)
    with Session(engine, expire_on_commit=False) as session:
        support = AddOn(
            code="support",
            name="Support contract",
            price_cents=240000,
            interval="year",
            per="organisation",
        )
        session.add(support)
        session.flush()
        session.add(
            AddOnOrder(
                addon_id=support.id,
                organisation_id=world.ids["org"],
                status="active",
                live_key=f"{support.id}:{world.ids['org']}",
                paid_at=utcnow(),
            )
        )
        server = session.get(Server, world.ids["server"])
        assert server is not None
        server.slot = 0
        server.version = "4.5.1"
        session.add(server)
        stored = secrets.ensure(session, server.id)
        result = ContractWorld(world, stored, server.domain)
        for name, email, scopes in (
            ("owner_pb", "owner@org-a.example-herd.org", PLAYBOOKS),
            ("playbooks_only", "owner@org-a.example-herd.org", {Scope.playbooks}),
            ("admin_pb", "admin@org-a.example-herd.org", PLAYBOOKS),
            ("viewer_pb", "viewer@org-a.example-herd.org", PLAYBOOKS),
            ("billing_pb", "billing@org-a.example-herd.org", PLAYBOOKS),
            ("outsider_pb", "owner@org-b.example-herd.org", PLAYBOOKS),
            ("staff_admin_pb", "admin@provider.example-herd.org", PLAYBOOKS | {Scope.staff}),
            ("operator_pb", "ops@provider.example-herd.org", PLAYBOOKS | {Scope.staff}),
        ):
            result.tokens[name] = factories.token(session, _person(session, email), scopes)[1]
        session.commit()
    return result


def untar(data: bytes) -> dict[str, bytes]:
    """The archive's files, read plainly (not through the code under test)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }
