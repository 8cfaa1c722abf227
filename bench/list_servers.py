"""Benchmark: listing servers 100 at a time, as staff and as an organisation
owner, through a real uvicorn server, on SQLite and PostgreSQL.

Prints p50/p95 latency and SQL statements per request for a fleet of 1,000
organisations and 10,000 servers, and statements per request at other page
and fleet sizes (they must not change). A trivial endpoint on the same server
is the baseline, so the ratio column survives a noisy machine.

    .venv/bin/python -m bench.list_servers [--requests 300] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from controlplane import migrate
from controlplane.auth.roles import OrgRole, Scope, StaffRole
from controlplane.billing.models import Plan
from controlplane.crypto import digest
from controlplane.db import make_engine
from controlplane.ids import uuid7
from controlplane.servers.models import Server
from controlplane.tenancy.models import Membership, Organisation, User
from controlplane.tokens.models import ApiToken
from tests.processes import api_process

POSTGRES_SERVER_URL = os.environ.get(
    "HERD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
STATES = ["active"] * 8 + ["suspended", "requested"]


@dataclass
class Fleet:
    staff_token: str
    owner_token: str
    big_org: uuid.UUID


def _token(user_id: uuid.UUID, scopes: list[str]) -> tuple[dict, str]:
    lookup = uuid.uuid4().hex[:12]
    plaintext = f"herd_{lookup}_{'b' * 43}"
    now = datetime.now(UTC)
    row = {
        "id": uuid7(),
        "user_id": user_id,
        "organisation_id": None,
        "name": "bench",
        "lookup": lookup,
        "secret_digest": digest(plaintext),
        "scopes": scopes,
        "created_at": now,
        "expires_at": now + timedelta(days=1),
        "revoked_at": None,
        "last_used_at": None,
    }
    return row, plaintext


def seed(url: str, organisations: int, servers: int) -> Fleet:
    """One large organisation holds a tenth of the fleet (a university with
    many servers); the rest spread over the others."""
    engine = make_engine(url)
    now = datetime.now(UTC)
    plan_id = uuid7()
    staff_id, owner_id = uuid7(), uuid7()
    orgs = [
        {
            "id": uuid7(),
            "slug": f"org-{i}",
            "name": f"Org {i}",
            "timezone": "UTC",
            "billing_email": None,
            "created_at": now,
        }
        for i in range(organisations)
    ]
    users = [
        {
            "id": staff_id,
            "email": "staff@bench.invalid",
            "name": "",
            "staff_role": StaffRole.admin.value,
            "is_active": True,
            "created_at": now,
        },
        {
            "id": owner_id,
            "email": "owner@bench.invalid",
            "name": "",
            "staff_role": None,
            "is_active": True,
            "created_at": now,
        },
    ]
    memberships = [
        {
            "id": uuid7(),
            "organisation_id": orgs[0]["id"],
            "user_id": owner_id,
            "role": OrgRole.owner.value,
            "created_at": now,
        }
    ]
    big = servers // 10
    rows = []
    for i in range(servers):
        org = orgs[0] if i < big else orgs[1 + (i - big) % (organisations - 1)]
        rows.append(
            {
                "id": uuid7(),
                "organisation_id": org["id"],
                "plan_id": plan_id,
                "host_id": None,
                "domain": f"s{i}.bench-herd.social",
                "state": STATES[i % len(STATES)],
                "state_reason": None,
                "state_changed_at": now,
                "version": "4.5.2",
                "title": f"Server {i}",
                "description": "",
                "contact_email": None,
                "registrations_mode": "approved",
                "labels": {},
                "created_at": now,
                "updated_at": now,
            }
        )
    staff_row, staff_token = _token(staff_id, [Scope.read.value, Scope.staff.value])
    owner_row, owner_token = _token(owner_id, [Scope.read.value])
    with engine.begin() as connection:
        connection.execute(
            insert(Plan),
            [
                {
                    "id": plan_id,
                    "code": "small",
                    "name": "Small",
                    "description": "",
                    "monthly_price_cents": 1,
                    "currency": "eur",
                    "max_users": 10,
                    "storage_gb": 10,
                    "active": True,
                    "created_at": now,
                }
            ],
        )
        connection.execute(insert(User), users)
        connection.execute(insert(Organisation), orgs)
        connection.execute(insert(Membership), memberships)
        for start in range(0, len(rows), 2000):
            connection.execute(insert(Server), rows[start : start + 2000])
        connection.execute(insert(ApiToken), [staff_row, owner_row])
    if engine.dialect.name == "postgresql":
        with engine.connect() as connection:
            connection.exec_driver_sql("ANALYZE")
    engine.dispose()
    return Fleet(staff_token, owner_token, orgs[0]["id"])


@contextmanager
def database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        path = workdir / f"bench-{uuid.uuid4().hex[:6]}.sqlite3"
        yield f"sqlite:///{path}"
        return
    name = f"herd_bench_{uuid.uuid4().hex[:8]}"
    dsn = make_url(POSTGRES_SERVER_URL).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(POSTGRES_SERVER_URL).set(database=name).render_as_string(False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def server(url: str, workdir: Path) -> Iterator[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERD_")}
    env.update(
        HERD_DATABASE_URL=url,
        HERD_DATA_DIR=str(workdir / "data"),
        HERD_SECRET_KEY="bench-secret-key-0123456789abcdefghijklmnop",
    )
    with api_process(env) as base:
        yield base


def _statements(client: httpx.Client, route: str) -> tuple[float, float]:
    text = client.get("/metrics").text
    pattern = r'herd_http_request_db_statements_{}\{{method="GET",route="{}"\}} ([0-9.e+]+)'
    total = re.search(pattern.format("sum", re.escape(route)), text)
    count = re.search(pattern.format("count", re.escape(route)), text)
    return (float(total.group(1)) if total else 0.0, float(count.group(1)) if count else 0.0)


def measure(base: str, token: str, path: str, route: str, limit: int, requests: int) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    latencies: list[float] = []
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(20):  # warm caches and the connection pool
            client.get(path, params={"limit": limit})
        before_sum, before_count = _statements(client, route)
        cursor = None
        for _ in range(requests):
            params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
            started = time.perf_counter()
            response = client.get(path, params=params)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()
            page = response.json()
            assert len(page["items"]) > 0
            cursor = page["next_cursor"]  # walk the fleet; start over at its end
        after_sum, after_count = _statements(client, route)
    latencies.sort()
    return {
        "p50": statistics.median(latencies) * 1000,
        "p95": latencies[int(len(latencies) * 0.95) - 1] * 1000,
        "statements": (after_sum - before_sum) / max(after_count - before_count, 1),
    }


def baseline(base: str, requests: int) -> float:
    latencies = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(requests):
            started = time.perf_counter()
            client.get("/healthz/live")
            latencies.append(time.perf_counter() - started)
    return statistics.median(latencies) * 1000


def run(backend: str, requests: int, workdir: Path) -> None:
    print(f"\n== {backend}")
    for organisations, servers in ((1000, 10000), (100, 1000)):
        with database(backend, workdir) as url:
            migrate.upgrade(url)
            started = time.perf_counter()
            fleet = seed(url, organisations, servers)
            print(
                f"seeded {organisations} organisations, {servers} servers "
                f"in {time.perf_counter() - started:.1f}s"
            )
            with server(url, workdir) as base:
                floor = baseline(base, requests)
                print(f"baseline GET /healthz/live p50 {floor:.2f} ms")
                print(
                    f"{'caller':<8} {'fleet':>6} {'page':>5} {'p50 ms':>8} {'p95 ms':>8} "
                    f"{'p50/base':>9} {'SQL/req':>8}"
                )
                cases = [("staff", fleet.staff_token, "/api/v1/servers", "/api/v1/servers")]
                org_path = f"/api/v1/organisations/{fleet.big_org}/servers"
                cases.append(
                    ("owner", fleet.owner_token, org_path, "/api/v1/organisations/{org_id}/servers")
                )
                limits = (100,) if servers < 10000 else (10, 100, 500)
                for caller, token, path, route in cases:
                    for limit in limits:
                        n = requests if limit == 100 else max(requests // 3, 30)
                        result = measure(base, token, path, route, limit, n)
                        print(
                            f"{caller:<8} {servers:>6} {limit:>5} {result['p50']:>8.2f} "
                            f"{result['p95']:>8.2f} {result['p50'] / floor:>9.1f} "
                            f"{result['statements']:>8.2f}"
                        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="herd-bench-"))
    try:
        for backend in args.backends.split(","):
            run(backend, args.requests, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
