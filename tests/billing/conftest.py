from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controlplane.billing import stripe_client, work
from controlplane.billing.settings import get_billing_settings
from tests.billing import stripe_events as se
from tests.billing.localstripe_server import API_KEY, LocalStripe, localstripe_process
from tests.billing.stripe_events import WEBHOOK_SECRET, FakeGateway
from tests.conftest import TEST_SECRET_KEY
from tests.processes import api_process


@pytest.fixture
def sent() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def billing_on(
    herd_env: Path, monkeypatch: pytest.MonkeyPatch, sent: list[tuple[str, str]]
) -> Iterator[FakeGateway]:
    """Billing switched on against a fake Stripe; tasks are collected, not
    sent, so each test runs the workers' units of work itself."""
    monkeypatch.setenv("HERD_STRIPE_API_KEY", "sk_test_herd")
    monkeypatch.setenv("HERD_STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
    monkeypatch.setenv("HERD_BILLING_GRACE_DAYS", "14")
    monkeypatch.setenv("HERD_BILLING_RETENTION_DAYS", "30")
    monkeypatch.setattr(work, "_send", lambda task, arg: sent.append((task, arg)))
    get_billing_settings.cache_clear()
    fake = FakeGateway()
    stripe_client.use_gateway(fake)
    yield fake
    stripe_client.use_gateway(None)
    get_billing_settings.cache_clear()


# -- localstripe and Herd's API in a process, for the tests that use them ------------


@pytest.fixture(scope="session")
def localstripe_server() -> Iterator[LocalStripe]:
    with localstripe_process() as server:
        yield server


@pytest.fixture
def localstripe(localstripe_server: LocalStripe) -> Iterator[LocalStripe]:
    localstripe_server.reset()
    yield localstripe_server
    localstripe_server.reset()


@pytest.fixture
def stripe_on(
    herd_env: Any,
    monkeypatch: pytest.MonkeyPatch,
    localstripe: LocalStripe,
    sent: list[tuple[str, str]],
) -> Iterator[LocalStripe]:
    """Billing on, the real SDK pointed at localstripe; this process's tasks
    are collected in `sent` rather than sent to a broker."""
    monkeypatch.setenv("HERD_STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("HERD_STRIPE_API_BASE", localstripe.base)
    monkeypatch.setenv("HERD_STRIPE_WEBHOOK_SECRET", se.WEBHOOK_SECRET)
    monkeypatch.setenv("HERD_STRIPE_MAX_NETWORK_RETRIES", "0")
    monkeypatch.setattr(work, "_send", lambda task, arg: sent.append((task, arg)))
    get_billing_settings.cache_clear()
    stripe_client.use_gateway(None)
    yield localstripe
    stripe_client.use_gateway(None)
    get_billing_settings.cache_clear()


@pytest.fixture(scope="module")
def herd_api_base(
    postgres_url: str, localstripe_server: LocalStripe, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Herd's API in one uvicorn process for the module (starting one takes
    seconds), on the session's PostgreSQL database, which each test empties."""
    env = os.environ | {
        "HERD_DATABASE_URL": postgres_url,
        "HERD_DATA_DIR": str(tmp_path_factory.mktemp("herd-api") / "data"),
        "HERD_SECRET_KEY": TEST_SECRET_KEY,
        "HERD_STRIPE_API_KEY": API_KEY,
        "HERD_STRIPE_API_BASE": localstripe_server.base,
        "HERD_STRIPE_WEBHOOK_SECRET": se.WEBHOOK_SECRET,
        "HERD_STRIPE_MAX_NETWORK_RETRIES": "0",
    }
    with api_process(env) as base:
        yield base


@pytest.fixture
def herd_api(stripe_on: LocalStripe, herd_api_base: str) -> str:
    """The API, registered with localstripe as the webhook endpoint."""
    stripe_on.register_webhook("herd", f"{herd_api_base}{se.WEBHOOK_PATH}", se.WEBHOOK_SECRET)
    return herd_api_base
