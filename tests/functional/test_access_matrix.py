"""Every endpoint, tried by every kind of caller, gets exactly the answer it
should. The table below is the policy written out by hand; the test also
checks that it lists every operation in the OpenAPI document, so a new
endpoint cannot ship without a line here.

Rules for refusals: no token, an expired or a revoked token → 401; a
read-only token on a change → 403; someone who cannot see the organisation
→ 404 (never 403, which would confirm it exists); someone who can see it but
lacks the role → 403; staff-only endpoints → 403 for everyone else.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.conftest import Database
from tests.factories import PRINCIPALS, World, build_world, fingerprint

READERS = "owner admin billing viewer operator staff_admin readonly"
ANYONE = "owner admin billing viewer outsider operator staff_admin staff_without_scope readonly"
CAN_SEE_ORG = frozenset(READERS.split())
BROKEN = frozenset({"anonymous", "expired", "revoked"})


@dataclass(frozen=True)
class Case:
    method: str
    path: str
    allowed: frozenset[str]
    status: int
    kind: str  # "org": outsiders get 404; "global": refused is 403; "public": no auth
    body: Callable[[World], dict[str, Any]] | None = None

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def url(self, world: World) -> str:
        path = self.path
        for key, value in world.ids.items():
            path = path.replace("{" + key + "}", str(value))
        return path

    def expected(self, principal: str) -> int:
        if principal in self.allowed:
            return self.status
        if principal in BROKEN:
            return 401
        if principal == "readonly" and self.method != "GET":
            return 403
        if self.kind == "org" and principal not in CAN_SEE_ORG:
            return 404
        return 403


def case(
    method: str,
    path: str,
    allowed: str,
    status: int = 200,
    kind: str = "org",
    body: Callable[[World], dict[str, Any]] | None = None,
) -> Case:
    names = frozenset(allowed.split())
    if method != "GET":
        names -= {"readonly"}
    prefix = "" if kind == "public" else "/api/v1"
    return Case(method, prefix + path, names, status, kind, body)


CHANGE_ORG = "owner admin staff_admin"
STAFF = "operator staff_admin"

CASES = [
    case("GET", "/me", ANYONE, kind="global"),
    case("GET", "/organisations", ANYONE, kind="global"),
    case(
        "POST",
        "/organisations",
        ANYONE,
        201,
        "global",
        lambda w: {"name": "New Org", "slug": "new-org"},
    ),
    case("GET", "/organisations/{org}", READERS),
    case("PATCH", "/organisations/{org}", CHANGE_ORG, body=lambda w: {"name": "Renamed"}),
    case("GET", "/organisations/{org}/members", READERS),
    case(
        "PATCH",
        "/organisations/{org}/members/{spare_user}",
        CHANGE_ORG,
        body=lambda w: {"role": "billing"},
    ),
    case("DELETE", "/organisations/{org}/members/{spare_user}", CHANGE_ORG, 204),
    case("GET", "/organisations/{org}/invitations", READERS),
    case(
        "POST",
        "/organisations/{org}/invitations",
        CHANGE_ORG,
        201,
        body=lambda w: {"email": "someone@example-herd.org", "role": "viewer"},
    ),
    case("DELETE", "/organisations/{org}/invitations/{invitation}", CHANGE_ORG),
    case("GET", "/organisations/{org}/servers", READERS),
    case(
        "POST",
        "/organisations/{org}/servers",
        CHANGE_ORG,
        201,
        body=lambda w: {"domain": "fresh.org-a-herd.social", "plan": "small", "title": "Fresh"},
    ),
    case("GET", "/organisations/{org}/tokens", "owner admin operator staff_admin readonly"),
    case("GET", "/organisations/{org}/audit", "owner admin operator staff_admin readonly"),
    case("GET", "/servers", ANYONE, kind="global"),
    case("GET", "/servers/{server}", READERS),
    case("PATCH", "/servers/{server}", CHANGE_ORG, body=lambda w: {"title": "Retitled"}),
    case("GET", "/servers/{server}/events", READERS),
    case("POST", "/servers/{requested_server}/cancel", CHANGE_ORG, body=lambda w: {}),
    case(
        "POST",
        "/servers/{server}/suspend",
        STAFF,
        kind="global",
        body=lambda w: {"reason": "abuse report 42"},
    ),
    case("POST", "/servers/{suspended_server}/resume", STAFF, kind="global", body=lambda w: {}),
    case("POST", "/servers/{requested_server}/approve", STAFF, kind="global", body=lambda w: {}),
    case("POST", "/servers/{failed_server}/retry", STAFF, kind="global", body=lambda w: {}),
    # The world's active server reports no version yet (and has a job
    # running): the callers allowed get as far as the service's checks;
    # test_upgrades.py covers the 202.
    case(
        "POST",
        "/servers/{server}/upgrade",
        STAFF,
        409,
        "global",
        body=lambda w: {"version": "v4.6.0"},
    ),
    case("GET", "/servers/{server}/jobs", READERS),
    # The world's server has a host but no slot yet: the callers allowed get
    # as far as the placement check (test_preview.py and test_drift.py cover a
    # placed one).
    case("GET", "/servers/{server}/preview", "owner admin operator staff_admin readonly", 409),
    case("POST", "/servers/{server}/drift", STAFF, 409, "global"),
    case("GET", "/organisations/{org}/sso", READERS),
    # Switching SSO off needs no Keycloak; on is covered in tests/identity.
    case("PUT", "/organisations/{org}/sso", CHANGE_ORG, body=lambda w: {"enabled": False}),
    # SSO is off in this world: the callers allowed get as far as that check.
    case("POST", "/servers/{server}/sso/rotate", CHANGE_ORG, 409),
    case("GET", "/jobs", STAFF, kind="global"),
    case("GET", "/jobs/{job}", READERS),
    case("GET", "/jobs/{job}/events", READERS),
    case("GET", "/jobs/{finished_job}/stream", READERS),
    case("POST", "/jobs/{job}/cancel", STAFF, kind="global"),
    case("GET", "/tokens", ANYONE, kind="global"),
    case(
        "POST",
        "/tokens",
        ANYONE,
        201,
        "global",
        body=lambda w: {"name": "ci", "scopes": ["read"]},
    ),
    case("DELETE", "/tokens/{org_token}", CHANGE_ORG),
    case("GET", "/plans", ANYONE, kind="global"),
    case("GET", "/plans/{plan}", ANYONE, kind="global"),
    case(
        "POST",
        "/plans",
        "staff_admin",
        201,
        "global",
        lambda w: {
            "code": "medium",
            "name": "Medium",
            "monthly_price_cents": 9900,
            "max_users": 2000,
            "storage_gb": 200,
        },
    ),
    case("PATCH", "/plans/{plan}", "staff_admin", kind="global", body=lambda w: {"name": "S"}),
    case("GET", "/hosts", STAFF, kind="global"),
    case(
        "POST",
        "/hosts",
        STAFF,
        201,
        "global",
        lambda w: {"name": "h2", "address": "127.0.0.1", "ssh_port": 2202, "capacity": 4},
    ),
    case(
        "POST",
        "/hosts/ec2",
        STAFF,
        202,
        "global",
        lambda w: {"name": "h-ec2", "image_id": "ami-12345678", "instance_type": "t3.large"},
    ),
    case("GET", "/hosts/{host}", STAFF, kind="global"),
    case("PATCH", "/hosts/{host}", STAFF, kind="global", body=lambda w: {"capacity": 8}),
    case("DELETE", "/hosts/{empty_host}", STAFF, 204, "global"),
    case("GET", "/audit", STAFF, kind="global"),
    case(
        "GET", "/organisations/{org}/billing", "owner admin billing operator staff_admin readonly"
    ),
    case(
        "PATCH",
        "/organisations/{org}/billing",
        "staff_admin",
        body=lambda w: {"collection_method": "send_invoice", "days_until_due": 30},
    ),
    case(
        "GET", "/organisations/{org}/invoices", "owner admin billing operator staff_admin readonly"
    ),
    # The world holds no invoice: the callers allowed get as far as the lookup
    # (tests/billing covers a stored one).
    case(
        "GET",
        "/organisations/{org}/invoices/{missing_invoice}",
        "owner admin billing operator staff_admin readonly",
        404,
    ),
    # The world's server has no subscription: the callers allowed get as far
    # as that check (tests/billing covers a change).
    case(
        "POST",
        "/servers/{server}/plan",
        "owner billing staff_admin",
        409,
        body=lambda w: {"plan": "small"},
    ),
    # Add-ons. The world's catalogue has none ({addon} stays a literal code)
    # and billing is off: the callers allowed get as far as those checks
    # (tests/billing/test_addons.py covers orders).
    case("GET", "/addons", ANYONE, kind="global"),
    case("GET", "/organisations/{org}/addons", "owner admin billing operator staff_admin readonly"),
    case("POST", "/organisations/{org}/addons/{addon}", "owner billing staff_admin", 409),
    case("DELETE", "/organisations/{org}/addons/{addon}", "owner billing staff_admin", 404),
    case("GET", "/servers/{server}/addons", "owner admin billing operator staff_admin readonly"),
    case("POST", "/servers/{server}/addons/{addon}", "owner billing staff_admin", 404),
    case("DELETE", "/servers/{server}/addons/{addon}", "owner billing staff_admin", 404),
    # Rollouts (tests/functional/test_rollouts.py covers their behaviour).
    case("GET", "/releases", STAFF, kind="global"),
    case("POST", "/releases", STAFF, 201, "global", lambda w: {"tag": "v4.5.2"}),
    case("POST", "/releases/import", STAFF, kind="global", body=lambda w: {"releases": []}),
    case(
        "PUT",
        "/releases/series",
        STAFF,
        kind="global",
        body=lambda w: {"series": "4.5", "end_of_support": "2027-01-01"},
    ),
    # Branding (tests/branding covers the checks and the brand job). The
    # uploads here send no body: allowed callers get as far as its type.
    case("GET", "/servers/{server}/branding", READERS),
    case(
        "PUT",
        "/servers/{server}/branding",
        CHANGE_ORG,
        body=lambda w: {"primary_color": "#1f4fbf", "custom_css": "a { color: red }"},
    ),
    case("PUT", "/servers/{server}/branding/logo", CHANGE_ORG, 415),
    case("PUT", "/servers/{server}/branding/background", CHANGE_ORG, 415),
    # No image is set in this world: removing one is allowed and changes nothing.
    case("DELETE", "/servers/{server}/branding/logo", CHANGE_ORG),
    case("DELETE", "/servers/{server}/branding/background", CHANGE_ORG),
    # Backups (tests/backups covers the list and the job). The world's server
    # has no slot: the callers allowed get as far as the placement check.
    case("GET", "/servers/{server}/backups", READERS),
    case("POST", "/servers/{server}/backups/refresh", "owner admin operator staff_admin", 409),
    case("GET", "/organisations/{org}/maintenance-windows", READERS),
    case(
        "PUT",
        "/organisations/{org}/maintenance-windows",
        CHANGE_ORG,
        body=lambda w: {"windows": [{"weekday": 1, "start": "02:00", "duration_minutes": 60}]},
    ),
    # The world's catalogue is empty: allowed callers get as far as the
    # release lookup.
    case(
        "POST",
        "/rollouts/plan",
        STAFF,
        404,
        "global",
        lambda w: {"target": "v4.5.2", "selector": {"all": True}},
    ),
    case(
        "POST",
        "/rollouts",
        STAFF,
        404,
        "global",
        lambda w: {"target": "v4.5.2", "selector": {"all": True}},
    ),
    case("GET", "/rollouts", STAFF, kind="global"),
    # The world has no rollout: allowed callers get as far as the lookup.
    case("GET", "/rollouts/{job}", STAFF, 404, "global"),
    case("GET", "/rollouts/{job}/servers", STAFF, 404, "global"),
    case("POST", "/rollouts/{job}/pause", STAFF, 404, "global"),
    case("POST", "/rollouts/{job}/resume", STAFF, 404, "global"),
    case("POST", "/rollouts/{job}/abort", STAFF, 404, "global"),
    # Playbook bundles. No token of the world carries the playbooks scope, so
    # pulling and reporting are refused to all (tests/bundles covers who may).
    case("GET", "/api/v1/playbooks/signing-key", " ".join(PRINCIPALS), kind="public"),
    case("POST", "/organisations/{org}/playbooks/bundle", ""),
    case(
        "POST",
        "/organisations/{org}/playbooks/reports",
        "",
        body=lambda w: {
            "playbook": "upgrade.yml",
            "status": "succeeded",
            "bundle_version": "1.0.0",
            "hosts": [
                {"host": "a", "ok": 1, "changed": 0, "unreachable": 0, "failed": 0, "skipped": 0}
            ],
        },
    ),
    case("GET", "/organisations/{org}/playbooks/reports", READERS),
    case("GET", "/playbooks/reports", STAFF, kind="global"),
    # The fleet moderation queue (tests/moderation/test_queue*.py covers it).
    # The world staffs no server and {job} names no report: allowed callers
    # get an empty queue, and as far as the report lookup.
    case("GET", "/moderation/queue", STAFF, kind="global"),
    case("POST", "/moderation/reports/{job}/assign", STAFF, 404, "global"),
    case("POST", "/moderation/reports/{job}/unassign", STAFF, 404, "global"),
    case("POST", "/moderation/reports/{job}/resolve", STAFF, 404, "global"),
    case("POST", "/moderation/reports/{job}/reopen", STAFF, 404, "global"),
    case(
        "POST",
        "/moderation/reports/{job}/action",
        STAFF,
        404,
        "global",
        lambda w: {"type": "none"},
    ),
    case("GET", "/servers/{server}/moderation/figures", READERS),
    # Moderation teams and staffing (tests/moderation/test_staffing_api.py).
    # The world has no team ({job} names none) and no moderation add-on.
    case("GET", "/moderation/teams", STAFF, kind="global"),
    case("POST", "/moderation/teams", STAFF, 201, "global", lambda w: {"name": "Night owls"}),
    case("GET", "/moderation/teams/{job}", STAFF, 404, "global"),
    case("PUT", "/moderation/teams/{job}", STAFF, 404, "global", lambda w: {"name": "Owls"}),
    case("DELETE", "/moderation/teams/{job}", STAFF, 404, "global"),
    case(
        "POST",
        "/moderation/teams/{job}/members",
        STAFF,
        404,
        "global",
        lambda w: {"user_id": str(w.ids["spare_user"]), "mastodon_username": "owl"},
    ),
    case("DELETE", "/moderation/teams/{job}/members/{spare_user}", STAFF, 404, "global"),
    case("GET", "/servers/{server}/moderation", READERS),
    case(
        "PUT",
        "/servers/{server}/moderation",
        STAFF,
        422,
        "global",
        lambda w: {"team_id": str(uuid.uuid4()), "response_hours": 4},
    ),
    case("DELETE", "/servers/{server}/moderation", STAFF, 404, "global"),
    case("GET", "/healthz", " ".join(PRINCIPALS), kind="public"),
    case("GET", "/healthz/live", " ".join(PRINCIPALS), kind="public"),
]
# Accepting an invitation is open to callers without a token by design; its
# rules are tested on their own in test_invitations.py. Stripe's webhook is
# authenticated by its signature, not a token: tests/billing covers it.
SEPARATELY_TESTED = {
    "POST /api/v1/invitations/accept",
    "POST /api/v1/billing/stripe/webhook",
    # Mastodon's webhooks: by their signature (tests/moderation/test_queue.py).
    "POST /api/v1/moderation/webhooks/{server_id}",
}


def _normalise(path: str) -> str:
    import re

    return re.sub(r"\{[^}]+\}", "{}", path)


def test_the_table_covers_every_operation(client: TestClient) -> None:
    documented = {
        f"{method.upper()} {_normalise(path)}"
        for path, operations in client.get("/openapi.json").json()["paths"].items()
        for method in operations
    }
    tabled = {f"{c.method} {_normalise(c.path)}" for c in CASES} | {
        _normalise(name) for name in SEPARATELY_TESTED
    }
    assert documented - tabled == set(), "endpoints missing from the access table"
    assert tabled - documented == set(), "table lists endpoints that do not exist"


def _call(client: TestClient, c: Case, world: World, principal: str) -> Any:
    return client.request(
        c.method,
        c.url(world),
        headers=world.headers(principal),
        json=c.body(world) if c.body else None,
    )


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.name)
def test_access(c: Case, client: TestClient, engine: Engine, database: Database) -> None:
    world = build_world(engine)
    before = fingerprint(engine)
    for principal in PRINCIPALS:
        if principal in c.allowed:
            continue
        response = _call(client, c, world, principal)
        assert response.status_code == c.expected(principal), (principal, response.text)
        assert response.headers["content-type"] == "application/problem+json", principal
    assert fingerprint(engine) == before, "a refused request changed the database"

    for principal in sorted(c.allowed):
        database.reset()
        world = build_world(engine)
        response = _call(client, c, world, principal)
        assert response.status_code == c.status, (principal, response.text)


# Callers who must not learn that organisation A's resources exist: the owner
# of another organisation (a token with every scope a member can hold).
OTHER_TENANTS = ("outsider",)


def _hide_ids(url: str, world: World) -> str:
    for value in world.ids.values():
        url = url.replace(str(value), str(uuid.uuid4()))
    return url


def _comparable(response: Any) -> tuple[int, str, Any]:
    body = response.json() if response.content else None
    if isinstance(body, dict):
        body.pop("request_id", None)
    return response.status_code, response.headers.get("content-type", ""), body


def test_another_tenants_resource_answers_like_a_missing_one(
    client: TestClient, engine: Engine
) -> None:
    """For every operation in the OpenAPI document whose path names a
    resource another tenant may not use, that tenant gets exactly the answer a made-up id gets:
    same status, same content type, same body (request id aside)."""
    world = build_world(engine)
    by_name = {f"{c.method} {_normalise(c.path)}": c for c in CASES}
    separate = {_normalise(name) for name in SEPARATELY_TESTED}
    compared = []
    for path, operations in client.get("/openapi.json").json()["paths"].items():
        for method in operations:
            name = f"{method.upper()} {_normalise(path)}"
            if name in separate:
                continue
            c = by_name[name]
            real = c.url(world)
            missing = _hide_ids(real, world)
            if missing == real:
                continue  # no resource in the path
            for principal in OTHER_TENANTS:
                if principal in c.allowed:
                    continue  # shared by every tenant (plans, add-ons)
                answers = [
                    _comparable(
                        client.request(
                            c.method,
                            url,
                            headers=world.headers(principal),
                            json=c.body(world) if c.body else None,
                        )
                    )
                    for url in (real, missing)
                ]
                assert answers[0] == answers[1], (name, principal, answers)
                assert answers[0][0] in (403, 404), (name, principal, answers[0])
            compared.append(name)
    assert len(compared) >= 40, compared
