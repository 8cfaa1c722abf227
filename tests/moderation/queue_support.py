"""What the queue's tests share: the Mastodon stand-in's web process run in
this test process (its real handler and admin API on a loopback port, its
state in a temporary folder), and a fleet with staffed servers whose
moderators hold tokens the stand-in knows.

Staffing rows are written straight through part 1's models (assignment,
granted access with an encrypted token, a paid moderation add-on), so these
tests read them through the real `access.staffed_servers`/`server_token`.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from controlplane.auth.roles import OrgRole, Scope, StaffRole
from controlplane.billing.models import AddOn, AddOnOrder
from controlplane.crypto import secret_box
from controlplane.moderation.models import (
    AccessState,
    Assignment,
    ModerationTeam,
    ModeratorAccess,
    TeamMember,
)
from controlplane.servers.lifecycle import ServerState
from controlplane.settings import get_settings
from controlplane.sqltypes import utcnow
from tests import factories
from tests.hosts.standin import admin_api, common, web

STAFF_SCOPES = {Scope.read, Scope.write, Scope.staff}
MOD_SCOPES = [
    "admin:read:reports",
    "admin:write:reports",
    "admin:read:accounts",
    "admin:write:accounts",
]
# The stand-in's accounts: two Herd moderators, a reporter, two reported.
ALICE, BOB, REPORTER, SPAMMER, TROLL = "100", "101", "2", "3", "4"


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class StandIn:
    """One Mastodon server: the stand-in's state folder and where it listens."""

    folder: Path
    port: int
    domain: str

    def read(self) -> dict[str, Any]:
        return json.loads((self.folder / common.ADMIN).read_text())

    def report(self, remote_id: str) -> dict[str, Any]:
        return next(r for r in self.read()["reports"] if r["id"] == remote_id)

    def account(self, account_id: str) -> dict[str, Any]:
        return next(a for a in self.read()["accounts"] if a["id"] == account_id)

    def seed(self, reports: list[dict[str, Any]]) -> None:
        with self.data() as data:
            data["reports"].extend(reports)

    @contextmanager
    def data(self) -> Iterator[dict[str, Any]]:
        with use_state(self.folder), admin_api.admin_data() as data:
            yield data

    def entity(self, remote_id: str) -> dict[str, Any]:
        """The report as Mastodon's JSON (Admin::Report), for a webhook body."""
        with self.data() as data:
            record = next(r for r in data["reports"] if r["id"] == remote_id)
            return admin_api.report_entity(record, data, self.domain)


_state_lock = threading.Lock()


@contextmanager
def use_state(folder: Path) -> Iterator[None]:
    # The stand-in keeps its folder in a module global: one server's
    # request at a time points it at that server's folder.
    with _state_lock:
        before = common.STATE_DIR
        common.STATE_DIR = folder
        try:
            yield
        finally:
            common.STATE_DIR = before


def start_standin(folder: Path, domain: str) -> tuple[ThreadingHTTPServer, StandIn]:
    folder.mkdir(parents=True)
    tokens = {
        "tok-alice": {"account_id": ALICE, "scopes": MOD_SCOPES},
        "tok-bob": {"account_id": BOB, "scopes": MOD_SCOPES},
    }
    (folder / common.TOKENS).write_text(json.dumps(tokens))
    accounts = [
        admin_api.account_record(ALICE, "alice", role="Moderator"),
        admin_api.account_record(BOB, "bob", role="Moderator"),
        admin_api.account_record(REPORTER, "reporter"),
        admin_api.account_record(SPAMMER, "spammer"),
        admin_api.account_record(TROLL, "troll", domain="elsewhere.example"),
    ]
    (folder / common.ADMIN).write_text(json.dumps({"accounts": accounts, "reports": []}))
    config = web.Config(
        env={"RAILS_ENV": "production", "LOCAL_DOMAIN": domain}, version="4.5.2", api_version=6
    )

    class Handler(web.Handler):
        def dispatch(self, method: str) -> None:
            with use_state(folder):
                super().dispatch(method)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    Handler.config = config
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, StandIn(folder, server.server_address[1], domain)


@dataclass
class Fleet:
    """Two staffed servers of one organisation (the second one's host does
    not answer), a server of another organisation, and the people."""

    engine: Engine
    standin: StandIn
    org_id: uuid.UUID
    other_org_id: uuid.UUID
    server_id: uuid.UUID
    dead_server_id: uuid.UUID
    tokens: dict[str, str] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


def _moderation_addon(session: Session) -> AddOn:
    addon = AddOn(code="moderation", name="Moderation staffing", price_cents=30000)
    session.add(addon)
    session.flush()
    return addon


def _staff(
    session: Session,
    server_id: uuid.UUID,
    org_id: uuid.UUID,
    addon: AddOn,
    team: ModerationTeam,
    minutes: int,
) -> None:
    session.add(
        AddOnOrder(
            addon_id=addon.id,
            organisation_id=org_id,
            server_id=server_id,
            status="active",
            live_key=f"{addon.id}:{server_id}",
            paid_at=utcnow(),
        )
    )
    session.add(Assignment(server_id=server_id, team_id=team.id, response_minutes=minutes))


def _grant(
    session: Session, server_id: uuid.UUID, user_id: uuid.UUID, name: str, account: str, token: str
) -> None:
    session.add(
        ModeratorAccess(
            server_id=server_id,
            user_id=user_id,
            mastodon_username=name,
            account_id=account,
            token_encrypted=secret_box().encrypt(token),
            state=AccessState.granted,
            granted_at=utcnow(),
        )
    )


def build_fleet(engine: Engine, standin: StandIn, dead_port: int) -> Fleet:
    """alice (operator) and bob (staff admin) are in the team; alice has
    access on the live server, bob only on the dead one; carol (operator)
    is staff with no access anywhere."""
    tokens: dict[str, str] = {}
    with Session(engine, expire_on_commit=False) as session:
        org, other = factories.organisation(session), factories.organisation(session)
        plan = factories.plan(session, f"p{uuid.uuid4().hex[:6]}")
        live_host = factories.host(session)
        live_host.web_port_base = standin.port - 1
        dead_host = factories.host(session)
        dead_host.web_port_base = dead_port - 1
        server = factories.server(session, org, plan, ServerState.active, standin.domain, live_host)
        dead = factories.server(session, org, plan, ServerState.active, None, dead_host)
        server.slot = dead.slot = 1
        session.add_all([live_host, dead_host, server, dead])
        alice = factories.user(session, "alice@provider.example-herd.org", StaffRole.operator)
        bob = factories.user(session, "bob@provider.example-herd.org", StaffRole.admin)
        carol = factories.user(session, "carol@provider.example-herd.org", StaffRole.operator)
        viewer = factories.member(session, org, OrgRole.viewer)
        outsider = factories.member(session, other, OrgRole.owner)
        team = ModerationTeam(name=f"Team {uuid.uuid4().hex[:6]}", languages=["en"])
        session.add(team)
        session.flush()
        session.add(TeamMember(team_id=team.id, user_id=alice.id, mastodon_username="alice"))
        session.add(TeamMember(team_id=team.id, user_id=bob.id, mastodon_username="bob"))
        addon = _moderation_addon(session)
        _staff(session, server.id, org.id, addon, team, 60)
        _staff(session, dead.id, org.id, addon, team, 240)
        _grant(session, server.id, alice.id, "alice", ALICE, "tok-alice")
        _grant(session, dead.id, bob.id, "bob", BOB, "tok-bob")
        for name, person in (("alice", alice), ("bob", bob), ("carol", carol)):
            tokens[name] = factories.token(session, person, STAFF_SCOPES)[1]
        tokens["viewer"] = factories.token(session, viewer)[1]
        tokens["outsider"] = factories.token(session, outsider)[1]
        session.commit()
    return Fleet(engine, standin, org.id, other.id, server.id, dead.id, tokens)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(name="standin")
def standin_fixture(tmp_path: Path) -> Iterator[StandIn]:
    server, answer = start_standin(tmp_path / "standin", "social.org-a-herd.example")
    yield answer
    server.shutdown()
    server.server_close()


@pytest.fixture(name="fleet")
def fleet_fixture(
    engine: Engine, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Fleet]:
    # Herd reaches the stand-in as it reaches test hosts: straight to the
    # web process, with the server's domain in Host.
    monkeypatch.setenv("HERD_HEALTH_CHECK", "direct")
    get_settings.cache_clear()
    yield build_fleet(engine, standin, free_port())
    get_settings.cache_clear()


def report(
    remote_id: str,
    target: str = SPAMMER,
    *,
    age: timedelta = timedelta(minutes=5),
    now: datetime | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A report record for the stand-in, made `age` ago."""
    made = (now or utcnow()) - age
    return admin_api.report_record(
        remote_id, REPORTER, target, created_at=stamp(made), updated_at=stamp(made), **fields
    )
