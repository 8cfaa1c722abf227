"""Abuse limits: API tokens created per caller, failed authentication per
client address (429 problem+json with Retry-After), the token buckets
themselves (in memory and in Redis), and webhook deliveries refused before
their body is read when unsigned or oversize."""

from __future__ import annotations

import http.client
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from controlplane.ratelimit import Limit, MemoryLimiter, RedisLimiter
from controlplane.settings import get_settings
from tests.factories import build_world

REDIS_URL = "redis://127.0.0.1:6379/14"
WEBHOOK = "/api/v1/billing/stripe/webhook"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_empties_then_refills_at_its_rate() -> None:
    clock = Clock()
    limiter, limit = MemoryLimiter(clock), Limit("test", per_minute=3)
    assert [limiter.take("a", limit) for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a", limit) == pytest.approx(20.0)  # one token every 20 s
    assert limiter.take("b", limit) == 0, "each key has its own bucket"
    clock.now += 19
    assert limiter.take("a", limit, consume=False) == pytest.approx(1.0)
    clock.now += 1
    assert limiter.take("a", limit) == 0
    assert limiter.take("a", limit) > 0


def test_the_memory_limiter_forgets_buckets_that_have_refilled() -> None:
    clock = Clock()
    limiter, limit = MemoryLimiter(clock), Limit("test", per_minute=5)
    limiter.PRUNE_ABOVE = 10
    for n in range(11):
        limiter.take(f"address-{n}", limit)
    assert len(limiter) == 11
    clock.now += 60
    limiter.take("late", limit)
    assert len(limiter) == 1, "only the bucket used in the last minute is kept"


def test_redis_buckets_are_shared_by_every_limiter() -> None:
    first, second = RedisLimiter(REDIS_URL), RedisLimiter(REDIS_URL)
    limit, key = Limit("test", per_minute=4), uuid.uuid4().hex
    assert [first.take(key, limit) for _ in range(2)] == [0, 0]
    assert [second.take(key, limit) for _ in range(2)] == [0, 0]
    wait = first.take(key, limit)
    assert 14 < wait <= 15  # one token every 15 s
    assert second.take(key, limit, consume=False) > 0
    stored = redis.Redis.from_url(REDIS_URL).ttl(f"herd:ratelimit:test:{key}")
    assert 0 < stored <= 61, "a bucket expires once it would be full again"


def test_without_redis_the_limiter_stays_open() -> None:
    # Nothing listens on port 9; an outage of the store must not stop the API.
    assert RedisLimiter("redis://127.0.0.1:9/0").take("k", Limit("test", 1)) == 0


@pytest.fixture
def limited(herd_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("HERD_RATE_LIMIT_TOKEN_CREATIONS", "3")
    monkeypatch.setenv("HERD_RATE_LIMIT_AUTH_FAILURES", "5")
    # TestClient speaks plain http: the portal's cookie cannot be Secure.
    monkeypatch.setenv("HERD_WEB_COOKIE_SECURE", "false")
    get_settings.cache_clear()
    from controlplane.app import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as client:
        yield client


def _assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"] == "urn:herd:problem:rate-limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_token_creation_is_limited_per_caller(limited: TestClient, engine: Engine) -> None:
    world = build_world(engine)
    create = {"name": "ci", "scopes": ["read"]}
    owner, viewer = world.headers("owner"), world.headers("viewer")
    answers = [limited.post("/api/v1/tokens", json=create, headers=owner) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 201]
    _assert_limited(limited.post("/api/v1/tokens", json=create, headers=owner))
    # Another caller has a bucket of their own, and the owner can still read.
    assert limited.post("/api/v1/tokens", json=create, headers=viewer).status_code == 201
    assert limited.get("/api/v1/tokens", headers=owner).status_code == 200


def test_invitation_acceptance_is_limited_per_address(limited: TestClient) -> None:
    attempts = [
        limited.post("/api/v1/invitations/accept", json={"token": f"inv_guess{n}"})
        for n in range(4)
    ]
    assert all(a.status_code != 429 for a in attempts[:3]), [a.text for a in attempts]
    _assert_limited(attempts[3])


def test_failed_authentication_is_limited_per_address(limited: TestClient, engine: Engine) -> None:
    world = build_world(engine)
    guesses = [
        limited.get("/api/v1/me", headers={"Authorization": f"Bearer herd_x{n}_guess"})
        for n in range(5)
    ]
    assert [g.status_code for g in guesses] == [401] * 5
    # The address is now refused even with a valid token: its guesses are
    # not checked any more, so the answer cannot tell a right one.
    _assert_limited(limited.get("/api/v1/me", headers=world.headers("owner")))
    _assert_limited(limited.get("/api/v1/me", headers={"Authorization": "Bearer herd_y_z"}))
    # Requests without credentials are not what this limit is about.
    assert limited.get("/healthz/live").status_code == 200


def test_guessing_tokens_at_the_portal_sign_in_is_limited_too(limited: TestClient) -> None:
    page = limited.get("/sign-in")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    guesses = [
        limited.post(
            "/sign-in/token", data={"token": f"herd_x{n}_guess", "csrf_token": csrf.group(1)}
        )
        for n in range(5)
    ]
    assert [g.status_code for g in guesses] == [401] * 5
    _assert_limited(
        limited.post("/sign-in/token", data={"token": "herd_y_z", "csrf_token": csrf.group(1)})
    )


def test_successful_authentication_takes_nothing(limited: TestClient, engine: Engine) -> None:
    world = build_world(engine)
    answers = [limited.get("/api/v1/me", headers=world.headers("owner")) for _ in range(20)]
    assert {a.status_code for a in answers} == {200}


def test_limits_are_shared_through_redis(
    herd_env: Path, monkeypatch: pytest.MonkeyPatch, engine: Engine
) -> None:
    """Two API processes (here two applications) on one Redis share buckets."""
    monkeypatch.setenv("HERD_RATE_LIMIT_REDIS_URL", REDIS_URL)
    monkeypatch.setenv("HERD_RATE_LIMIT_TOKEN_CREATIONS", "2")
    get_settings.cache_clear()
    from controlplane.app import create_app

    world = build_world(engine)
    create, owner = {"name": "ci", "scopes": ["read"]}, world.headers("owner")
    with (
        TestClient(create_app(), raise_server_exceptions=False) as one,
        TestClient(create_app(), raise_server_exceptions=False) as two,
    ):
        assert one.post("/api/v1/tokens", json=create, headers=owner).status_code == 201
        assert two.post("/api/v1/tokens", json=create, headers=owner).status_code == 201
        _assert_limited(one.post("/api/v1/tokens", json=create, headers=owner))
        _assert_limited(two.post("/api/v1/tokens", json=create, headers=owner))


# -- webhooks: refused before the body is read ----------------------------------------


def _declare_only(base: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    """Send a request's headers and no body at all: an answer can only come
    from a server that decided without reading the body (else the read
    would wait, and the socket time out)."""
    parts = urlsplit(base)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)
    try:
        connection.putrequest("POST", path)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {
            "content-type": response.getheader("content-type", ""),
            "body": response.read().decode(),
        }
    finally:
        connection.close()


def test_unsigned_and_oversize_webhooks_are_refused_unread(live_server: str) -> None:
    json_type = {"Content-Type": "application/json"}
    unsigned = _declare_only(live_server, WEBHOOK, {**json_type, "Content-Length": "5000"})
    assert unsigned[0] == 400
    assert unsigned[1]["content-type"] == "application/problem+json"
    assert "bad-signature" in unsigned[1]["body"]

    signed = {**json_type, "Stripe-Signature": "t=1,v1=00"}
    too_big = _declare_only(live_server, WEBHOOK, {**signed, "Content-Length": "300000"})
    assert too_big[0] == 413
    assert too_big[1]["content-type"] == "application/problem+json"

    # 300 kB is within the general body limit: only the webhook is this strict.
    other = httpx.post(
        f"{live_server}/api/v1/tokens", content=b"x" * 300_000, headers=json_type, timeout=10
    )
    assert other.status_code != 413, other.text


def test_a_streamed_oversize_webhook_is_cut_off(live_server: str) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 10_000

    response = httpx.post(
        f"{live_server}{WEBHOOK}",
        content=chunks(),
        headers={"Stripe-Signature": "t=1,v1=00", "Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
