from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from controlplane.billing import stripe_client, work
from controlplane.billing.settings import get_billing_settings
from tests.billing.stripe_events import WEBHOOK_SECRET, FakeGateway


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
