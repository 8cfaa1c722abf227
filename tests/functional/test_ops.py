"""Liveness, readiness and metrics."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from controlplane.ops import health
from controlplane.settings import get_settings
from tests.factories import World


def test_ready_when_database_and_broker_answer(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


@pytest.mark.parametrize(
    "broker", ["redis://127.0.0.1:6379/15", "amqp://guest:guest@127.0.0.1:5672//"]
)
def test_ready_over_redis_and_rabbitmq(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, broker: str
) -> None:
    monkeypatch.setenv("HERD_BROKER_URL", broker)
    get_settings.cache_clear()
    health.reset_cache()
    assert client.get("/healthz").json()["checks"] == {"database": "ok", "broker": "ok"}


def test_not_ready_when_the_broker_is_gone(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Port 9 on loopback: nothing listens there.
    monkeypatch.setenv("HERD_BROKER_URL", "redis://127.0.0.1:9/0")
    get_settings.cache_clear()
    health.reset_cache()
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["checks"]["broker"].startswith("error")
    assert response.json()["checks"]["database"] == "ok"
    assert client.get("/healthz/live").status_code == 200


def test_metrics_show_requests_statements_and_servers_by_state(
    client: TestClient, world: World
) -> None:
    for _ in range(3):
        client.get("/api/v1/servers", headers=world.headers("owner"))
    body = client.get("/metrics").text
    assert re.search(r'herd_servers\{state="active"\} 1\.0', body)
    assert re.search(r'herd_servers\{state="suspended"\} 1\.0', body)
    assert 'route="/api/v1/servers"' in body
    assert "herd_http_request_db_statements_bucket" in body
    # Ids never become label values.
    assert str(world.ids["server"]) not in body


def test_every_answer_carries_a_request_id(client: TestClient) -> None:
    mine = client.get("/healthz/live", headers={"X-Request-ID": "abc-123"})
    assert mine.headers["x-request-id"] == "abc-123"
    hostile = client.get("/healthz/live", headers={"X-Request-ID": "bad id\nwith newline"})
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])
